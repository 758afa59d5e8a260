"""Signing in to the console (username, password, TOTP code) and out, through the API's own
login and logout (``api/auth.py``): the same Session events, throttling, audit rows and idle
timeout. Who may use the console: ``CONSOLE_ROLES``, or a custodian of an active, noticed hold
(to acknowledge their own notices). Anyone else signs in successfully, is recorded as refused
(a ``RoleRefusal``, as the API records one), has that session ended at once, and is pointed to
the thin client."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api import auth
from api.auth import Principal
from api.console.web import (
    CONSOLE_ROLES,
    PREFIX,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    ConsoleRoute,
    CsrfChecked,
    CsrfRefused,
    Problem,
    clear_cookie,
    redirect,
    render,
    services_of,
    set_cookie,
    sign_in_nonce,
    sign_in_token,
    sign_in_token_holds,
)
from api.errors import TooManyAttempts, Unauthenticated
from api.refused_requests import refuse_role
from api.throttle import client_address
from domain.users import User
from events.ledger import Ledger
from legal_hold import holds as lh

router = APIRouter(route_class=ConsoleRoute)

WRONG = Problem(401, "Not signed in", "The username, password or code is wrong.")
THIN_CLIENT = Problem(
    403,
    "The console is not for this account",
    "The console is for owners, risk managers, auditors and user administrators. "
    "Clinicians and front-desk staff use the Chartledger thin client.",
)


def is_custodian(ledger: Ledger, user_id: UUID) -> bool:
    """Whether ``user_id`` is a custodian of an active hold whose notice went out."""
    return any(
        h.active and not h.silent and h.current_version is not None
        for h in lh.all_holds(ledger)
        if user_id in h.scope.custodians
    )


def _safe_next(target: str) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target:
        return target
    return PREFIX + "/"


def _form(request: Request, *, status_code: int = 200, **context: object) -> Response:
    nonce = sign_in_nonce(request)
    response = render(
        request,
        "sign_in.html",
        status_code=status_code,
        sign_in_token=sign_in_token(request, nonce),
        next=_safe_next(str(context.pop("next", None) or request.query_params.get("next", ""))),
        **context,
    )
    set_cookie(request, response, SIGN_IN_COOKIE, nonce)
    return response


@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return _form(request)


@router.post("/sign-in")
def sign_in(
    request: Request,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    totp_code: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    if not sign_in_token_holds(request, csrf_token):
        raise CsrfRefused()  # nothing is tried, so nothing is written
    services = services_of(request)
    ledger = services.ledger
    address = client_address(request, services.settings.trusted_proxies)
    try:
        token, session = auth.log_in(
            ledger,
            services.settings,
            username.strip(),
            password,
            totp_code.strip(),
            throttle=services.throttle,
            address=address,
        )
    except Unauthenticated:
        return _form(request, status_code=401, problem=WRONG, username=username, next=next)
    except TooManyAttempts as wait:
        problem = Problem(
            429,
            "Too many failed attempts",
            f"Wait {wait.retry_after} seconds before trying again from here.",
        )
        response = _form(request, status_code=429, problem=problem, username=username, next=next)
        response.headers["Retry-After"] = str(wait.retry_after)
        return response
    user = auth.load(ledger, session.user_id, User)
    principal = Principal(user_id=user.id, roles=tuple(user.roles), session_id=session.id)
    if not any(r in CONSOLE_ROLES for r in user.roles) and not is_custodian(ledger, user.id):
        refuse_role(ledger, principal, "POST /console/sign-in", CONSOLE_ROLES, None, auth.now())
        auth.log_out(ledger, principal, services.last_seen)
        return _form(request, status_code=403, problem=THIN_CLIENT, username=username)
    response = redirect(request, _safe_next(next))
    set_cookie(request, response, SESSION_COOKIE, token)
    clear_cookie(request, response, SIGN_IN_COOKIE)
    return response


@router.post("/sign-out")
def sign_out(request: Request, principal: CsrfChecked) -> Response:
    services = services_of(request)
    auth.log_out(services.ledger, principal, services.last_seen)
    response = redirect(request, PREFIX + "/sign-in", "Signed out.")
    clear_cookie(request, response, SESSION_COOKIE)
    return response
