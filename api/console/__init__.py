"""The console: server-rendered pages under ``/console`` for owners, risk managers, auditors
and user administrators (clinicians and front-desk staff keep the thin client), and for any
custodian acknowledging their own hold notices.

``router`` holds the sign-in and sign-out routes, the static files and every page family
(``api/console/pages/``); ``api/app.py`` includes it. What pages share is in ``web.py``;
docs/CONSOLE.md says how to add a page.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.console import sign_in, static
from api.console.pages import all_pages
from api.console.web import PREFIX, ConsoleRoute

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@router.get("")
def console_root() -> RedirectResponse:
    return RedirectResponse(PREFIX + "/", status_code=308)


router.include_router(sign_in.router)
router.include_router(static.router)
for page_router in all_pages():
    router.include_router(page_router)


@router.api_route("/{rest:path}", methods=["GET", "POST"])
def not_found(rest: str) -> None:
    """Any other console path: a 404 page, not the API's problem document (last, so every
    page family's routes come first)."""
    raise StarletteHTTPException(404, "There is no console page at this address.")


__all__ = ["router"]
