"""Break-glass: the review queue (owners and risk managers review each emergency access) and
the owners' alerts (acknowledged one by one). The API's functions do the work
(``api/routers/emergency.py``); reading either list is recorded as the API records it."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api import auth
from api.auth import Principal
from api.console.web import (
    PREFIX,
    ConsoleRoute,
    CsrfChecked,
    NavItem,
    OwnerPage,
    Problem,
    known_refusal,
    redirect,
    render,
    require_console_role,
    services_of,
)
from api.routers import emergency as service
from api.routers.users import accounts
from api.schemas import ReviewIn
from domain.patients import Patient
from events.ledger import Ledger

router = APIRouter(route_class=ConsoleRoute)
NAV = [
    NavItem("Break-glass reviews", PREFIX + "/break-glass", ("risk_manager",)),
    NavItem("Alerts", PREFIX + "/alerts", ("owner",)),
]
Reviewer = Annotated[Principal, require_console_role("risk_manager")]  # and owners


def people(ledger: Ledger) -> dict[UUID, str]:
    """Every user's name by id: pages name people, not ids."""
    return {user.id: user.name for _, user in accounts(ledger)}


def patient_names(ledger: Ledger, ids: set[UUID]) -> dict[UUID, str]:
    found = {}
    for patient_id in ids:
        patient = auth.load(ledger, patient_id, Patient)
        found[patient_id] = f"{patient.given_name} {patient.family_name} (MRN {patient.mrn})"
    return found


def _queue(request: Request, principal: Principal, *, problem: Problem | None = None) -> Response:
    ledger = services_of(request).ledger
    accesses = service.emergency_accesses(ledger, principal)
    waiting = [e for e in accesses if e.outcome is None]
    done = [e for e in accesses if e.outcome is not None]
    return render(
        request,
        "emergency/queue.html",
        status_code=200 if problem is None else problem.status,
        title="Break-glass reviews",
        waiting=waiting,
        done=list(reversed(done)),
        people=people(ledger),
        patients=patient_names(ledger, {e.patient_id for e in accesses}),
        problem=problem,
    )


@router.get("/break-glass")
def queue_page(request: Request, principal: Reviewer) -> Response:
    return _queue(request, principal)


@router.post("/break-glass/{access_id}/review")
def review(
    request: Request,
    access_id: UUID,
    checked: CsrfChecked,
    principal: Reviewer,
    outcome: Annotated[str, Form()] = "",
    note: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = ReviewIn(outcome=outcome, note=note.strip() or None)  # type: ignore[arg-type]
        service.review_access(
            services_of(request).ledger, principal, access_id, body.outcome, body.note
        )
    except Exception as error:
        return _queue(request, principal, problem=known_refusal(error))
    return redirect(request, PREFIX + "/break-glass", "Review recorded.")


@router.get("/alerts")
def alerts_page(request: Request, principal: OwnerPage) -> Response:
    ledger = services_of(request).ledger
    found = service.owner_alerts(ledger, principal)
    return render(
        request,
        "emergency/alerts.html",
        title="Alerts",
        new=[a for a in found if a.acknowledged_by is None],
        seen=list(reversed([a for a in found if a.acknowledged_by is not None])),
        people=people(ledger),
        patients=patient_names(ledger, {a.patient_id for a in found if a.patient_id}),
    )


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(
    request: Request, alert_id: UUID, checked: CsrfChecked, principal: OwnerPage
) -> Response:
    service.acknowledged_alert(services_of(request).ledger, principal, alert_id)
    return redirect(request, PREFIX + "/alerts", "Alert acknowledged.")
