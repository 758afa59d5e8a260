"""Disclosures (HIPAA 45 CFR 164.528): record one, and the patient's accounting of them."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import status

from api.auth import Principal, load
from api.deps import LedgerDep, RunnerDep
from api.roles import require_role
from api.routing import Router
from api.schemas import DisclosureIn, DisclosureRowOut, EntryOut, Purpose
from domain.access import Disclosure
from domain.patients import Patient
from projections.reads import Reader, read_disclosures

router = Router(tags=["disclosures"])
# Clinicians and risk managers record disclosures; owners pass every role check.
Discloser = Annotated[Principal, require_role("clinician", "risk_manager")]
Accountant = Annotated[Principal, require_role("risk_manager", "auditor")]


@router.post("/disclosures", status_code=status.HTTP_201_CREATED)
def record(body: DisclosureIn, principal: Discloser, ledger: LedgerDep) -> EntryOut:
    load(ledger, body.patient_id, Patient)
    disclosure = Disclosure.record(by=principal.user_id, **body.model_dump())
    with principal.acting():
        ledger.save(disclosure)
    return EntryOut(
        entry_id=disclosure.id, patient_id=body.patient_id, kind="Disclosure", version=1
    )


@router.get("/patients/{patient_id}/disclosures")
def accounting(
    patient_id: UUID,
    principal: Accountant,
    ledger: LedgerDep,
    runner: RunnerDep,
    purpose: Purpose = "PATRQT",
) -> list[DisclosureRowOut]:
    """The accounting of disclosures the patient may ask for; reading it is recorded."""
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    return [DisclosureRowOut(**r) for r in read_disclosures(ledger, runner, reader, patient_id)]
