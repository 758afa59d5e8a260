"""Patients: register (demographics) and search. A search is a read: it is recorded first."""

from __future__ import annotations

from typing import Annotated

from eventsourcing.persistence import IntegrityError
from fastapi import Query, status

from api.deps import LedgerDep, RunnerDep
from api.roles import FrontDesk, PatientFinder
from api.routing import Router
from api.schemas import PatientIn, PatientOut, Purpose
from domain.errors import DuplicateIdentifier
from domain.identifiers import MrnClaim
from domain.patients import Patient
from projections.reads import Reader, search_patients

router = Router(prefix="/patients", tags=["patients"])


@router.post("", status_code=status.HTTP_201_CREATED)
def register(body: PatientIn, principal: FrontDesk, ledger: LedgerDep) -> PatientOut:
    patient = Patient.register(
        mrn=body.mrn,
        given_name=body.given_name,
        family_name=body.family_name,
        birth_date=body.birth_date,
        sex=body.sex,
        identifiers=[i.model_dump() for i in body.identifiers],
    )
    claim = MrnClaim(claim_id=ledger.private_id("mrn", patient.mrn), patient_id=patient.id)
    try:
        with principal.acting():
            ledger.save(patient, claim)
    except IntegrityError:
        raise DuplicateIdentifier("a patient with this MRN is already registered") from None
    return PatientOut(
        patient_id=patient.id,
        mrn=patient.mrn,
        given_name=patient.given_name,
        family_name=patient.family_name,
        birth_date=patient.birth_date,
        sex=patient.sex,
    )


@router.get("")
def search(
    principal: PatientFinder,
    ledger: LedgerDep,
    runner: RunnerDep,
    q: Annotated[str, Query(min_length=1, max_length=100, description="MRN or name contains")],
    purpose: Purpose = "TREAT",
) -> list[PatientOut]:
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    return [
        PatientOut(
            patient_id=e.entry_id,
            **{k: e.state[k] for k in ("mrn", "given_name", "family_name", "birth_date", "sex")},
        )
        for e in search_patients(ledger, runner, reader, q)
    ]
