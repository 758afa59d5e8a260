"""Chart entries beside labs and notes: problems, medications, allergies, vitals.

Clinicians with a care relationship (or under break-glass, ``api/care.py``); quantities are
decimal strings with their UCUM units. Reading them is reading the chart (``/patients/{id}/chart``).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import status

from api.auth import Principal
from api.care import add_to_chart, change_in_chart
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import (
    AllergyIn,
    DoseChangeIn,
    EntryOut,
    MedicationIn,
    ProblemIn,
    ReasonIn,
    ResolveIn,
    StopIn,
    VitalIn,
)
from domain.allergies import Allergy
from domain.medications import Medication
from domain.problems import Problem
from domain.quantities import Quantity
from domain.vitals import VitalSign
from events.ledger import Ledger
from projections.runner import Runner

router = Router(tags=["chart entries"])


def _out(entry: Any) -> EntryOut:
    return EntryOut(
        entry_id=entry.id,
        patient_id=entry.patient_id,
        kind=type(entry).__name__,
        version=entry.version,
    )


def _new(
    ledger: Ledger, runner: Runner, principal: Principal, patient_id: UUID, make: Any
) -> EntryOut:
    return _out(add_to_chart(ledger, runner, principal, patient_id, make))


def _change(
    ledger: Ledger, runner: Runner, principal: Principal, entry_id: UUID, kind: type, change: Any
) -> EntryOut:
    return _out(change_in_chart(ledger, runner, principal, entry_id, kind, change))


@router.post("/problems", status_code=status.HTTP_201_CREATED)
def record_problem(
    body: ProblemIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _new(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: Problem.record(recorded_by=principal.user_id, **body.model_dump()),
    )


@router.post("/problems/{problem_id}/resolve")
def resolve_problem(
    problem_id: UUID, body: ResolveIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _change(
        ledger,
        runner,
        principal,
        problem_id,
        Problem,
        lambda p: p.resolve(resolved_by=principal.user_id, **body.model_dump()),
    )


@router.post("/problems/{problem_id}/reopen")
def reopen_problem(
    problem_id: UUID, body: ReasonIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _change(
        ledger,
        runner,
        principal,
        problem_id,
        Problem,
        lambda p: p.reopen(reopened_by=principal.user_id, reason=body.reason),
    )


@router.post("/medications", status_code=status.HTTP_201_CREATED)
def start_medication(
    body: MedicationIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    fields = body.model_dump(exclude={"dose_value", "dose_unit"})
    return _new(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: Medication.start(
            dose=Quantity(body.dose_value, body.dose_unit),
            prescriber_id=principal.user_id,
            **fields,
        ),
    )


@router.post("/medications/{medication_id}/dose")
def change_dose(
    medication_id: UUID,
    body: DoseChangeIn,
    principal: Clinician,
    ledger: LedgerDep,
    runner: RunnerDep,
) -> EntryOut:
    return _change(
        ledger,
        runner,
        principal,
        medication_id,
        Medication,
        lambda m: m.change_dose(
            dose=Quantity(body.dose_value, body.dose_unit),
            changed_on=body.changed_on,
            changed_by=principal.user_id,
            reason=body.reason,
            frequency=body.frequency,
        ),
    )


@router.post("/medications/{medication_id}/stop")
def stop_medication(
    medication_id: UUID, body: StopIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _change(
        ledger,
        runner,
        principal,
        medication_id,
        Medication,
        lambda m: m.stop(
            stopped_on=body.stopped_on, stopped_by=principal.user_id, reason=body.reason
        ),
    )


@router.post("/allergies", status_code=status.HTTP_201_CREATED)
def record_allergy(
    body: AllergyIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _new(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: Allergy.record(recorded_by=principal.user_id, **body.model_dump()),
    )


@router.post("/allergies/{allergy_id}/inactivate")
def inactivate_allergy(
    allergy_id: UUID, body: ReasonIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _change(
        ledger,
        runner,
        principal,
        allergy_id,
        Allergy,
        lambda a: a.inactivate(by=principal.user_id, reason=body.reason),
    )


@router.post("/vitals", status_code=status.HTTP_201_CREATED)
def measure(body: VitalIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> EntryOut:
    return _new(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: VitalSign.measure(
            patient_id=body.patient_id,
            loinc_code=body.loinc_code,
            name=body.name,
            quantity=Quantity(body.value, body.unit),
            measured_at=body.measured_at,
            measured_by=principal.user_id,
        ),
    )


@router.post("/vitals/{vital_id}/in-error")
def mark_in_error(
    vital_id: UUID, body: ReasonIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> EntryOut:
    return _change(
        ledger,
        runner,
        principal,
        vital_id,
        VitalSign,
        lambda v: v.mark_in_error(by=principal.user_id, reason=body.reason),
    )
