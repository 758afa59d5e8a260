"""Break-glass: emergency access to a patient's chart by someone without a care relationship.

An ``EmergencyAccess`` is declared with a reason and lasts until ``until``; it is loud (an
``Alert`` for the owners is raised with it) and it is reviewed afterwards (``review``). The
session it was declared in records it too (``Session.EmergencyAccessStarted``), so every request
of that session knows which patients it holds emergency access to, and for how long.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import choice, identifier, moment, optional_text, text
from domain.errors import EntryStateError, InvalidEntry

REVIEW_OUTCOMES = ("appropriate", "inappropriate")
ALERT_KINDS = ("break_glass",)


class EmergencyAccess(Record):
    @classmethod
    def declare(
        cls,
        *,
        user_id: UUID,
        patient_id: UUID,
        session_id: UUID,
        reason: str,
        at: datetime,
        until: datetime,
    ) -> EmergencyAccess:
        if moment(until, "until") <= moment(at, "at"):
            raise InvalidEntry("until must be after at")
        return cls(
            user_id=identifier(user_id, "user_id"),
            patient_id=identifier(patient_id, "patient_id"),
            session_id=identifier(session_id, "session_id"),
            reason=text(reason, "reason"),
            at=at,
            until=until,
        )

    @event("Declared")
    def __init__(
        self,
        user_id: UUID,
        patient_id: UUID,
        session_id: UUID,
        reason: str,
        at: datetime,
        until: datetime,
    ) -> None:
        self.user_id = user_id
        self.patient_id = patient_id
        self.session_id = session_id
        self.reason = reason
        self.at = at
        self.until = until
        self.reviewed_by: UUID | None = None
        self.reviewed_at: datetime | None = None
        self.outcome: str | None = None
        self.review_note: str | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id), user_subject(self.user_id))

    def review(self, *, by: UUID, at: datetime, outcome: str, note: str | None = None) -> None:
        """Once: the reviewer finds the emergency access appropriate or not."""
        if self.outcome is not None:
            raise EntryStateError(f"emergency access {self.id} was already reviewed")
        self._review(
            by=identifier(by, "by"),
            at=moment(at, "at"),
            outcome=choice(outcome, "outcome", REVIEW_OUTCOMES),
            note=optional_text(note, "note"),
        )

    @event("Reviewed")
    def _review(self, by: UUID, at: datetime, outcome: str, note: str | None) -> None:
        self.reviewed_by = by
        self.reviewed_at = at
        self.outcome = outcome
        self.review_note = note


class Alert(Record):
    """What the practice's owners must see (an outbox entry): raised once, acknowledged once."""

    @classmethod
    def raise_(
        cls, *, kind: str, about: UUID, user_id: UUID, patient_id: UUID | None, at: datetime
    ) -> Alert:
        return cls(
            kind=choice(kind, "kind", ALERT_KINDS),
            about=identifier(about, "about"),
            user_id=identifier(user_id, "user_id"),
            patient_id=None if patient_id is None else identifier(patient_id, "patient_id"),
            at=moment(at, "at"),
        )

    @event("Raised")
    def __init__(
        self, kind: str, about: UUID, user_id: UUID, patient_id: UUID | None, at: datetime
    ) -> None:
        self.kind = kind
        self.about = about
        self.user_id = user_id
        self.patient_id = patient_id
        self.at = at
        self.acknowledged_by: UUID | None = None
        self.acknowledged_at: datetime | None = None

    def ledger_subjects(self) -> Iterable[str]:
        subjects = [user_subject(self.user_id)]
        if self.patient_id is not None:
            subjects.append(patient_subject(self.patient_id))
        return subjects

    def acknowledge(self, *, by: UUID, at: datetime) -> None:
        if self.acknowledged_by is not None:
            raise EntryStateError(f"alert {self.id} was already acknowledged")
        self._acknowledge(by=identifier(by, "by"), at=moment(at, "at"))

    @event("Acknowledged")
    def _acknowledge(self, by: UUID, at: datetime) -> None:
        self.acknowledged_by = by
        self.acknowledged_at = at
