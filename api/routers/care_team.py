"""Putting clinicians in a patient's care: care-team assignments and the registered provider.

Owners and staff assign; nobody assigns themselves (403 ``not-permitted``, recorded as one
``Refusal``). Either gives the clinician the patient's chart (``api/care.py``) until it ends.

- ``POST /patients/{id}/care-team {"user_id": ...}``: the clinician joins the care team (again,
  if an earlier assignment ended); ``DELETE /patients/{id}/care-team/{user_id}`` ends it.
- ``PUT /patients/{id}/registered-provider {"user_id": ...}``: names (or changes) the patient's
  registered provider; ``DELETE /patients/{id}/registered-provider`` clears it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from fastapi import status

from api.auth import Principal, load, now
from api.care import refuse
from api.deps import LedgerDep
from api.roles import require_role
from api.routing import Router
from api.schemas import CareMemberIn, CareMemberOut
from domain.care_team import (
    CareAssignment,
    RegisteredProvider,
    care_assignment_id,
    registered_provider_id,
)
from domain.errors import EntryStateError, InvalidEntry, NotPermitted
from domain.patients import Patient
from domain.users import User
from events.ledger import Ledger

T = TypeVar("T")
router = Router(prefix="/patients", tags=["care team"])
# Owners pass every role check; staff keep the schedule and the care team.
CareAdmin = Annotated[Principal, require_role("staff")]


def _clinician(ledger: Ledger, user_id: UUID) -> None:
    if not load(ledger, user_id, User).has_role("clinician"):
        raise InvalidEntry("user_id must be an active clinician")


def _not_themselves(
    ledger: Ledger, principal: Principal, patient_id: UUID, make: Callable[[], T]
) -> T:
    """Run ``make``; a self-assignment it refuses is recorded before the 403."""
    try:
        return make()
    except NotPermitted:
        refuse(
            ledger,
            principal,
            patient_id,
            action="create",
            category="chart",
            reason="self-assignment",
        )
        raise


def _existing(ledger: Ledger, aggregate_id: UUID, kind: type[T]) -> T | None:
    try:
        return load(ledger, aggregate_id, kind)
    except AggregateNotFoundError:
        return None


@router.post("/{patient_id}/care-team", status_code=status.HTTP_201_CREATED)
def assign(
    patient_id: UUID, body: CareMemberIn, principal: CareAdmin, ledger: LedgerDep
) -> CareMemberOut:
    load(ledger, patient_id, Patient)
    _clinician(ledger, body.user_id)
    found = _existing(ledger, care_assignment_id(patient_id, body.user_id), CareAssignment)

    def assigned() -> CareAssignment:
        if found is None:
            return CareAssignment.assign(
                patient_id=patient_id, user_id=body.user_id, by=principal.user_id, at=now()
            )
        found.assign_again(by=principal.user_id, at=now())
        return found

    assignment = _not_themselves(ledger, principal, patient_id, assigned)
    with principal.acting():
        ledger.save(assignment)
    return CareMemberOut(patient_id=patient_id, user_id=body.user_id, active=True)


@router.delete("/{patient_id}/care-team/{user_id}")
def end(patient_id: UUID, user_id: UUID, principal: CareAdmin, ledger: LedgerDep) -> CareMemberOut:
    assignment = load(ledger, care_assignment_id(patient_id, user_id), CareAssignment)
    assignment.end(by=principal.user_id, at=now())
    with principal.acting():
        ledger.save(assignment)
    return CareMemberOut(patient_id=patient_id, user_id=user_id, active=False)


@router.put("/{patient_id}/registered-provider")
def register_provider(
    patient_id: UUID, body: CareMemberIn, principal: CareAdmin, ledger: LedgerDep
) -> CareMemberOut:
    load(ledger, patient_id, Patient)
    _clinician(ledger, body.user_id)
    found = _existing(ledger, registered_provider_id(patient_id), RegisteredProvider)
    if found is not None and found.user_id == body.user_id:
        raise EntryStateError("that clinician is already the registered provider")

    def named() -> RegisteredProvider:
        if found is None:
            return RegisteredProvider.appoint(
                patient_id=patient_id, user_id=body.user_id, by=principal.user_id, at=now()
            )
        found.change(user_id=body.user_id, by=principal.user_id, at=now())
        return found

    provider = _not_themselves(ledger, principal, patient_id, named)
    with principal.acting():
        ledger.save(provider)
    return CareMemberOut(patient_id=patient_id, user_id=body.user_id, active=True)


@router.delete("/{patient_id}/registered-provider")
def clear_provider(patient_id: UUID, principal: CareAdmin, ledger: LedgerDep) -> CareMemberOut:
    """A patient never given a registered provider has none to clear, as one whose provider was
    cleared (409 entry-state); 404 is for a patient that does not exist."""
    load(ledger, patient_id, Patient)
    provider = _existing(ledger, registered_provider_id(patient_id), RegisteredProvider)
    if provider is None:
        raise EntryStateError("the patient has no registered provider")
    former = provider.user_id
    provider.clear(by=principal.user_id, at=now())
    with principal.acting():
        ledger.save(provider)
    return CareMemberOut(patient_id=patient_id, user_id=former, active=False)
