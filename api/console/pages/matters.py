"""Matters in the console, for risk managers (the API's rules, ``api/routers/holds.py``):
listed, opened and closed (once every hold on the matter is released); a matter's page lists its
holds and productions, and starts the next hold (``holds.py``) or production
(``productions.py``). Every list is recorded as the API records it (``record_read``).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.auth import now
from api.console.legal import (
    ROLE,
    Refused,
    RiskManagerOnly,
    RiskManagerPosting,
    RoleNavItem,
    invalid,
    matter_productions,
    people,
    person_label,
)
from api.console.web import PREFIX, ConsoleRoute, Problem, redirect, render, services_of
from api.hold_schemas import MatterCloseIn, MatterIn
from api.routers.holds import record_read
from legal_hold import holds as lh
from legal_hold.custodians import status

router = APIRouter(route_class=ConsoleRoute)
NAV = [RoleNavItem("Matters", PREFIX + "/matters", (ROLE,))]
Text = Annotated[str, Form()]


def _matters_page(
    request: Request, principal: Any, problem: Problem | None = None, code: int = 200
) -> Response:
    ledger = services_of(request).ledger
    record_read(ledger, principal, "matters")
    found = lh.matters(ledger)
    holds = lh.all_holds(ledger)
    active = {m.id: sum(1 for h in holds if h.matter_id == m.id and h.active) for m in found}
    return render(
        request,
        "matters/matters.html",
        status_code=code,
        title="Matters",
        matters=sorted(found, key=lambda m: (not m.is_open, m.opened_at)),
        active=active,
        problem=problem,
    )


@router.get("/matters")
def matters(request: Request, principal: RiskManagerOnly) -> Response:
    return _matters_page(request, principal)


@router.post("/matters")
def open_matter(
    request: Request,
    principal: RiskManagerPosting,
    name: Text = "",
    number: Text = "",
    forum: Text = "",
) -> Response:
    ledger = services_of(request).ledger
    try:
        body = MatterIn(name=name, number=number, forum=forum or None)
        with principal.acting():
            matter = lh.open_matter(
                ledger,
                name=body.name,
                number=body.number,
                forum=body.forum,
                at=now(),
                by=principal.user_id,
            )
    except Refused as error:
        return _matters_page(request, principal, invalid(error), invalid(error).status)
    return redirect(request, f"{PREFIX}/matters/{matter.id}", "Matter opened.")


def matter_page(
    request: Request,
    principal: Any,
    matter_id: UUID,
    problem: Problem | None = None,
    code: int = 200,
) -> Response:
    services = services_of(request)
    ledger = services.ledger
    record_read(ledger, principal, "matter", matter_id=str(matter_id))
    matter = lh.get_matter(ledger, matter_id)
    holds = lh.all_holds(ledger, matter_id)
    staff = people(ledger)
    outstanding = {h.id: sum(1 for s in status(h) if s.outstanding and h.active) for h in holds}
    return render(
        request,
        "matters/matter.html",
        status_code=code,
        title=f"Matter {matter.number}",
        matter=matter,
        holds=holds,
        outstanding=outstanding,
        opened_by=person_label(staff, matter.opened_by),
        closed_by=person_label(staff, matter.closed_by),
        productions=matter_productions(ledger, matter_id),
        problem=problem,
    )


@router.get("/matters/{matter_id}")
def matter(request: Request, matter_id: UUID, principal: RiskManagerOnly) -> Response:
    return matter_page(request, principal, matter_id)


@router.post("/matters/{matter_id}/close")
def close_matter(
    request: Request, matter_id: UUID, principal: RiskManagerPosting, reason: Text = ""
) -> Response:
    ledger = services_of(request).ledger
    try:
        body = MatterCloseIn(reason=reason)
        with principal.acting():
            lh.close_matter(ledger, matter_id, reason=body.reason, at=now(), by=principal.user_id)
    except Refused as error:
        return matter_page(request, principal, matter_id, invalid(error), invalid(error).status)
    return redirect(request, f"{PREFIX}/matters/{matter_id}", "Matter closed.")
