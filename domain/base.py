"""What every clinical aggregate shares: its events name the subjects they concern.

The ledger links each event into the chain of every patient and user it concerns (header
``subjects``, LEDGER_FORMAT.md §4.1). An aggregate knows whose record it is; its events are
stamped with that when they are collected for saving, so no command has to repeat it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate


def patient_subject(patient_id: UUID) -> str:
    return f"patient:{patient_id}"


def user_subject(user_id: UUID) -> str:
    return f"user:{user_id}"


class Record(Aggregate):
    """An aggregate whose events carry ``subjects``: the patients and users they concern."""

    def ledger_subjects(self) -> Iterable[str]:
        """Override: the subjects this aggregate's events concern."""
        return ()

    def collect_events(self) -> Sequence[Any]:
        events = super().collect_events()
        subjects = tuple(sorted(set(self.ledger_subjects()), key=str.encode))
        for event in events:
            # An event class may name its subjects itself from its own fields (a property), so
            # the payload does not carry them a second time next to the header's.
            if not isinstance(getattr(type(event), "subjects", None), property):
                object.__setattr__(event, "subjects", subjects)
        return events
