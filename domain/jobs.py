"""A job (long work started over HTTP: a production, an export, an import, a backup) as ledger
events: who started what kind of work when, and how it ended (docs/JOBS.md).

The work itself records what it does (a production's disclosure and ``Production.Produced``, an
export's reads); these two events make the attempt visible even when the work failed or was
cancelled and so recorded nothing of its own. They carry no PHI: a kind, an outcome, a problem
type. Like a production, a job concerns the user who started it only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import choice, identifier, moment, optional_text
from domain.errors import EntryStateError, InvalidEntry

KINDS = ("production", "export", "import", "backup")  # those over HTTP today
KIND = re.compile(r"[a-z][a-z-]{0,39}", re.ASCII)  # a kind added later: a word, never data
OUTCOMES = ("succeeded", "failed", "cancelled")


def _kind(value: object) -> str:
    if type(value) is not str or not KIND.fullmatch(value):
        raise InvalidEntry("kind must be a lower-case word (production, export, ...)")
    return value


class Job(Record):
    @staticmethod
    def create_id(job_id: UUID) -> UUID:
        # The job's id names its row in the jobs table and its URL: chosen before it starts.
        return job_id

    @classmethod
    def begin(cls, *, job_id: UUID, kind: str, started_by: UUID, started_at: datetime) -> Job:
        return cls(
            job_id=identifier(job_id, "job_id"),
            kind=_kind(kind),
            started_by=identifier(started_by, "started_by"),
            started_at=moment(started_at, "started_at"),
        )

    @event("Started")
    def __init__(self, job_id: UUID, kind: str, started_by: UUID, started_at: datetime) -> None:
        self.kind = kind
        self.started_by = started_by
        self.started_at = started_at
        self.outcome: str | None = None

    def end(self, outcome: str, finished_at: datetime, problem_type: str | None = None) -> None:
        """``problem_type``: the RFC 9457 type of a failure (never its detail, which may name
        a file or a record). A job ends once."""
        if self.outcome is not None:
            raise EntryStateError(f"job {self.id} has ended already ({self.outcome})")
        self._end(
            outcome=choice(outcome, "outcome", OUTCOMES),
            finished_at=moment(finished_at, "finished_at"),
            problem_type=optional_text(problem_type, "problem_type"),
        )

    @event("Finished")
    def _end(self, outcome: str, finished_at: datetime, problem_type: str | None) -> None:
        self.outcome = outcome

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.started_by),)
