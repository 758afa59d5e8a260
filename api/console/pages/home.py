"""The console's front page: who is signed in, and where their work is."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.console.web import PREFIX, ConsoleRoute, ConsoleUserDep, NavItem, render

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("Home", PREFIX + "/", None)]


@router.get("/")
def home(request: Request, principal: ConsoleUserDep) -> Response:
    return render(request, "home/index.html", title="Home")
