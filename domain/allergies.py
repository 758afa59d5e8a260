"""Allergies and intolerances: recorded, and inactivated (refuted, resolved, in error)."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import choice, identifier, optional_text, text
from domain.errors import EntryStateError

SEVERITIES = ("mild", "moderate", "severe")


class Allergy(Record):
    @classmethod
    def record(
        cls,
        *,
        patient_id: UUID,
        substance: str,
        recorded_by: UUID,
        code_system: str | None = None,
        code: str | None = None,
        reaction: str | None = None,
        severity: str | None = None,
    ) -> Allergy:
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            substance=text(substance, "substance"),
            code_system=optional_text(code_system, "code_system"),
            code=optional_text(code, "code"),
            reaction=optional_text(reaction, "reaction"),
            severity=None if severity is None else choice(severity, "severity", SEVERITIES),
            recorded_by=identifier(recorded_by, "recorded_by"),
        )

    @event("Recorded")
    def __init__(
        self,
        patient_id: UUID,
        substance: str,
        code_system: str | None,
        code: str | None,
        reaction: str | None,
        severity: str | None,
        recorded_by: UUID,
    ) -> None:
        self.patient_id = patient_id
        self.substance = substance
        self.code_system = code_system
        self.code = code
        self.reaction = reaction
        self.severity = severity
        self.recorded_by = recorded_by
        self.active = True

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    def inactivate(self, *, by: UUID, reason: str) -> None:
        if not self.active:
            raise EntryStateError(f"allergy {self.id} is already inactive")
        self._inactivate(by=identifier(by, "by"), reason=text(reason, "reason"))

    @event("Inactivated")
    def _inactivate(self, by: UUID, reason: str) -> None:
        self.active = False
