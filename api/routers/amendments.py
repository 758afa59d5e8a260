"""Amendment requests (HIPAA 45 CFR 164.526): requested, accepted or denied, then the patient's
statement of disagreement and the practice's rebuttal. Clinicians with access to the chart."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import status

from api.auth import now
from api.care import add_to_chart, change_in_chart
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import AcceptIn, AmendmentIn, AmendmentOut, DenyIn, StatementIn
from domain.amendments import AmendmentRequest

router = Router(prefix="/amendment-requests", tags=["amendments"])


def _out(r: AmendmentRequest) -> AmendmentOut:
    return AmendmentOut(
        amendment_request_id=r.id,
        patient_id=r.patient_id,
        status=r.status,
        has_disagreement=getattr(r, "disagreement", None) is not None,
        has_rebuttal=getattr(r, "rebuttal", None) is not None,
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def request(
    body: AmendmentIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> AmendmentOut:
    made = add_to_chart(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: AmendmentRequest.request(**body.model_dump()),
    )
    return _out(made)


def _decide(
    request_id: UUID, principal: Any, ledger: Any, runner: Any, decide: Any
) -> AmendmentOut:
    return _out(change_in_chart(ledger, runner, principal, request_id, AmendmentRequest, decide))


@router.post("/{request_id}/accept")
def accept(
    request_id: UUID, body: AcceptIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> AmendmentOut:
    return _decide(
        request_id,
        principal,
        ledger,
        runner,
        lambda r: r.accept(
            decided_by=principal.user_id, at=now(), amendment_id=body.amendment_id, note=body.note
        ),
    )


@router.post("/{request_id}/deny")
def deny(
    request_id: UUID, body: DenyIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> AmendmentOut:
    return _decide(
        request_id,
        principal,
        ledger,
        runner,
        lambda r: r.deny(
            decided_by=principal.user_id, at=now(), basis=body.basis, denial_text=body.denial_text
        ),
    )


@router.post("/{request_id}/disagreement")
def disagreement(
    request_id: UUID,
    body: StatementIn,
    principal: Clinician,
    ledger: LedgerDep,
    runner: RunnerDep,
) -> AmendmentOut:
    """The patient's statement of disagreement, as the practice received it."""
    return _decide(
        request_id,
        principal,
        ledger,
        runner,
        lambda r: r.file_disagreement(statement=body.text, at=now()),
    )


@router.post("/{request_id}/rebuttal")
def rebuttal(
    request_id: UUID,
    body: StatementIn,
    principal: Clinician,
    ledger: LedgerDep,
    runner: RunnerDep,
) -> AmendmentOut:
    return _decide(
        request_id,
        principal,
        ledger,
        runner,
        lambda r: r.file_rebuttal(author_id=principal.user_id, text=body.text, at=now()),
    )
