"""Medications: started, dose changed, stopped. A dose is a decimal string and its UCUM unit."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import day, identifier, optional_text, text
from domain.errors import EntryStateError
from domain.quantities import Quantity, checked


class Medication(Record):
    @classmethod
    def start(
        cls,
        *,
        patient_id: UUID,
        drug: str,
        dose: Quantity,
        started_on: date,
        prescriber_id: UUID,
        code_system: str | None = None,
        code: str | None = None,
        route: str | None = None,
        frequency: str | None = None,
    ) -> Medication:
        dose = checked(dose, "dose")
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            drug=text(drug, "drug"),
            code_system=optional_text(code_system, "code_system"),
            code=optional_text(code, "code"),
            dose_value=dose.value,
            dose_unit=dose.unit,
            route=optional_text(route, "route"),
            frequency=optional_text(frequency, "frequency"),
            started_on=day(started_on, "started_on"),
            prescriber_id=identifier(prescriber_id, "prescriber_id"),
        )

    @event("Started")
    def __init__(
        self,
        patient_id: UUID,
        drug: str,
        code_system: str | None,
        code: str | None,
        dose_value: str,
        dose_unit: str,
        route: str | None,
        frequency: str | None,
        started_on: date,
        prescriber_id: UUID,
    ) -> None:
        self.patient_id = patient_id
        self.drug = drug
        self.code_system = code_system
        self.code = code
        self.dose_value = dose_value
        self.dose_unit = dose_unit
        self.route = route
        self.frequency = frequency
        self.started_on = started_on
        self.prescriber_id = prescriber_id
        self.stopped_on: date | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    @property
    def dose(self) -> Quantity:
        return Quantity(self.dose_value, self.dose_unit)

    @property
    def active(self) -> bool:
        return self.stopped_on is None

    def change_dose(
        self,
        *,
        dose: Quantity,
        changed_on: date,
        changed_by: UUID,
        reason: str,
        frequency: str | None = None,
    ) -> None:
        self._check_active()
        dose = checked(dose, "dose")
        self._change_dose(
            dose_value=dose.value,
            dose_unit=dose.unit,
            frequency=optional_text(frequency, "frequency"),
            changed_on=day(changed_on, "changed_on"),
            changed_by=identifier(changed_by, "changed_by"),
            reason=text(reason, "reason"),
        )

    @event("DoseChanged")
    def _change_dose(
        self,
        dose_value: str,
        dose_unit: str,
        frequency: str | None,
        changed_on: date,
        changed_by: UUID,
        reason: str,
    ) -> None:
        self.dose_value = dose_value
        self.dose_unit = dose_unit
        if frequency is not None:
            self.frequency = frequency

    def stop(self, *, stopped_on: date, stopped_by: UUID, reason: str) -> None:
        self._check_active()
        self._stop(
            stopped_on=day(stopped_on, "stopped_on"),
            stopped_by=identifier(stopped_by, "stopped_by"),
            reason=text(reason, "reason"),
        )

    @event("Stopped")
    def _stop(self, stopped_on: date, stopped_by: UUID, reason: str) -> None:
        self.stopped_on = stopped_on

    def _check_active(self) -> None:
        if not self.active:
            raise EntryStateError(f"medication {self.id} is stopped")
