"""The practice's status: the log and its newest signed checkpoint, the witnesses and the
timestamp authority, the last backup, and the background loops. For owners and auditors, as
``GET /status`` is."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Principal
from api.console.web import PREFIX, ConsoleRoute, NavItem, render, require_console_role, services_of
from api.practice_status import practice_status

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("Status", PREFIX + "/status", ("auditor",))]
StatusReader = Annotated[Principal, require_console_role("auditor")]  # and owners


@router.get("/status")
def status_page(request: Request, principal: StatusReader) -> Response:
    found = practice_status(services_of(request).ledger)
    return render(request, "status/index.html", title="Practice status", status=found)
