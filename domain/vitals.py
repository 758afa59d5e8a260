"""Vital signs: a measurement as a decimal string, its UCUM unit and its LOINC code."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import identifier, moment, optional_identifier, text
from domain.errors import EntryStateError
from domain.quantities import Quantity, checked


class VitalSign(Record):
    @classmethod
    def measure(
        cls,
        *,
        patient_id: UUID,
        loinc_code: str,
        name: str,
        quantity: Quantity,
        measured_at: datetime,
        measured_by: UUID | None = None,
    ) -> VitalSign:
        quantity = checked(quantity)
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            loinc_code=text(loinc_code, "loinc_code"),
            name=text(name, "name"),
            value=quantity.value,
            unit=quantity.unit,
            measured_at=moment(measured_at, "measured_at"),
            measured_by=optional_identifier(measured_by, "measured_by"),
        )

    @event("Measured")
    def __init__(
        self,
        patient_id: UUID,
        loinc_code: str,
        name: str,
        value: str,
        unit: str,
        measured_at: datetime,
        measured_by: UUID | None,
    ) -> None:
        self.patient_id = patient_id
        self.loinc_code = loinc_code
        self.name = name
        self.value = value
        self.unit = unit
        self.measured_at = measured_at
        self.measured_by = measured_by
        self.in_error = False

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    @property
    def quantity(self) -> Quantity:
        return Quantity(self.value, self.unit)

    def mark_in_error(self, *, by: UUID, reason: str) -> None:
        if self.in_error:
            raise EntryStateError(f"vital sign {self.id} is already marked in error")
        self._mark_in_error(by=identifier(by, "by"), reason=text(reason, "reason"))

    @event("MarkedInError")
    def _mark_in_error(self, by: UUID, reason: str) -> None:
        self.in_error = True
