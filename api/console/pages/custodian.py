"""A custodian's own legal hold notices in the console, for anyone signed in (any role): each
active, noticed hold they are a custodian of, its current notice, and their acknowledgement of
it (``api/routers/holds.py``: ``custodian_holds``). Nobody acknowledges for someone else.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.auth import now
from api.console.legal import Refused, invalid
from api.console.web import (
    PREFIX,
    ConsoleRoute,
    ConsoleUserDep,
    CsrfChecked,
    NavItem,
    Problem,
    redirect,
    render,
    services_of,
)
from api.routers.holds import custodian_holds
from legal_hold import holds as lh

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("My hold notices", PREFIX + "/my-holds", None)]
Text = Annotated[str, Form()]


def _my_holds_page(
    request: Request, principal: Any, problem: Problem | None = None, code: int = 200
) -> Response:
    mine = custodian_holds(services_of(request).ledger, principal.user_id)
    return render(
        request,
        "custodian/mine.html",
        status_code=code,
        title="My legal hold notices",
        holds=mine,
        problem=problem,
    )


@router.get("/my-holds")
def my_holds(request: Request, principal: ConsoleUserDep) -> Response:
    return _my_holds_page(request, principal)


@router.post("/my-holds/{hold_id}/acknowledge")
def acknowledge(
    request: Request, hold_id: UUID, principal: CsrfChecked, version: Text = ""
) -> Response:
    """The signed-in custodian acknowledges the notice version they were shown (a newer one
    issued meanwhile is refused: they are to read it first)."""
    ledger = services_of(request).ledger
    try:
        number = int(version)
        with principal.acting():
            lh.acknowledge(
                ledger, hold_id, custodian_id=principal.user_id, version=number, at=now()
            )
    except ValueError:
        problem = Problem(422, "Some fields are missing or invalid", "version")
        return _my_holds_page(request, principal, problem, 422)
    except Refused as error:
        return _my_holds_page(request, principal, invalid(error), invalid(error).status)
    return redirect(request, f"{PREFIX}/my-holds", f"Notice version {number} acknowledged.")
