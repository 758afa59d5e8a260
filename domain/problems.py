"""The problem list: a problem is recorded, resolved, and may be reopened."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import identifier, optional_day, optional_text, text
from domain.errors import EntryStateError


class Problem(Record):
    @classmethod
    def record(
        cls,
        *,
        patient_id: UUID,
        description: str,
        recorded_by: UUID,
        code_system: str | None = None,
        code: str | None = None,
        onset: str | None = None,
    ) -> Problem:
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            code_system=optional_text(code_system, "code_system"),
            code=optional_text(code, "code"),
            description=text(description, "description"),
            onset=optional_text(onset, "onset"),
            recorded_by=identifier(recorded_by, "recorded_by"),
        )

    @event("Recorded")
    def __init__(
        self,
        patient_id: UUID,
        code_system: str | None,
        code: str | None,
        description: str,
        onset: str | None,
        recorded_by: UUID,
    ) -> None:
        self.patient_id = patient_id
        self.code_system = code_system
        self.code = code
        self.description = description
        self.onset = onset
        self.recorded_by = recorded_by
        self.status = "active"
        self.resolved_on: date | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    def resolve(
        self, *, resolved_by: UUID, resolved_on: date | None = None, note: str | None = None
    ) -> None:
        if self.status != "active":
            raise EntryStateError(f"problem {self.id} is not active")
        self._resolve(
            resolved_by=identifier(resolved_by, "resolved_by"),
            resolved_on=optional_day(resolved_on, "resolved_on"),
            note=optional_text(note, "note"),
        )

    @event("Resolved")
    def _resolve(self, resolved_by: UUID, resolved_on: date | None, note: str | None) -> None:
        self.status = "resolved"
        self.resolved_on = resolved_on

    def reopen(self, *, reopened_by: UUID, reason: str) -> None:
        if self.status != "resolved":
            raise EntryStateError(f"problem {self.id} is not resolved")
        self._reopen(
            reopened_by=identifier(reopened_by, "reopened_by"), reason=text(reason, "reason")
        )

    @event("Reopened")
    def _reopen(self, reopened_by: UUID, reason: str) -> None:
        self.status = "active"
        self.resolved_on = None
