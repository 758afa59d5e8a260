"""What every console page uses: who is signed in, CSRF tokens, rendering, refusals in words.

- The session is the API's own (``api/auth.py``): the cookie holds the same token ``POST
  /auth/login`` returns, and every page checks it with ``authenticate``, so the idle timeout,
  revocation and the refused-request records are the API's.
- CSRF: a form's token is HMAC-SHA-256 of the session id under a key kept in the practice home
  (``console-csrf.key``, made once, 0600), so every server process of the practice computes the
  same token and a token from another session, or from before a sign-in, fails. The sign-in
  form, which has no session yet, is bound to a random nonce held in a cookie of its own.
- Refusals (a role the page needs, a domain rule, a hold) are pages that say what was refused,
  with the status the API would answer; never JSON or a stack trace (``ConsoleRoute``).
- Flash messages travel in a signed cookie for one redirect; they name actions, never PHI.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from api import auth, errors
from api.auth import Principal
from api.deps import Services
from api.errors import Forbidden, TooManyAttempts, Unauthenticated
from api.refused_requests import refuse_role
from api.roles import allowed
from api.throttle import _trusted, client_address
from domain.users import User
from events import store_errors
from events.keys import KeyError_, read_master_key

log = logging.getLogger("chartledger.console")

PREFIX = "/console"
SESSION_COOKIE = "chartledger_console"
SIGN_IN_COOKIE = "chartledger_console_sign_in"  # the sign-in form's nonce
FLASH_COOKIE = "chartledger_console_flash"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"  # htmx requests send the token here (base.html's hx-headers)
KEY_FILE = "console-csrf.key"
# The console is for these; anyone else is pointed to the thin client, unless they are a
# custodian of a hold (they sign in to acknowledge their own notices).
CONSOLE_ROLES = ("owner", "risk_manager", "auditor", "user_admin")
TEMPLATES = Path(__file__).parent / "templates"


class SignInRequired(Exception):
    """No session, or one that ended: the browser is sent to the sign-in page."""


# -- the practice's console key -----------------------------------------------------------


@functools.cache
def console_key(home: Path) -> bytes:
    """The key CSRF tokens and flash cookies are made with: 32 bytes in the practice home,
    written once (the first process to get there wins; the others read its key). Derived from
    the master key, so that servers on several hosts (each home holding a copy of the keys,
    docs/DEPLOYMENT.md) make the same key and accept each other's forms; a home's key written
    before, at random, is kept."""
    path = home / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        for _ in range(100):  # the winner may not have written it yet
            key = path.read_bytes()
            if len(key) == 32:
                return key
            os.sched_yield()
        raise RuntimeError(f"{path} does not hold a 32-byte key") from None
    key = _derived_key(home)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def _derived_key(home: Path) -> bytes:
    """HMAC of a fixed label under the master key; random if this home has no master key."""
    master = home / "keys" / "master.key"
    try:
        secret = read_master_key(master)
    except (OSError, KeyError_):
        return secrets.token_bytes(32)
    return hmac.new(secret, b"chartledger console key v1", hashlib.sha256).digest()


def _key(request: Request) -> bytes:
    return console_key(services_of(request).settings.store.home)


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def csrf_token(key: bytes, session_id: object) -> str:
    """The token forms of session ``session_id`` carry."""
    return _mac(key, "csrf", str(session_id))


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


# -- who is signed in ---------------------------------------------------------------------


def console_user(request: Request) -> Principal:
    """The principal of the session in the console cookie, checked against the ledger now (as
    every API request is); none, or an ended one, sends the browser to the sign-in page."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired()
    services = services_of(request)
    try:
        principal = auth.authenticate(
            services.ledger,
            services.settings,
            token,
            services.last_seen,
            address=client_address(request, services.settings.trusted_proxies),
            budget=services.refusals,
        )
    except Unauthenticated:
        raise SignInRequired() from None
    user = auth.load(services.ledger, principal.user_id, User, hot=True)
    request.state.console_principal = principal
    request.state.console_user_name = user.name
    request.state.csrf_token = csrf_token(_key(request), principal.session_id)
    return principal


ConsoleUserDep = Annotated[Principal, Depends(console_user)]


def require_console_role(*roles: str) -> Any:
    """A dependency passing signed-in users who hold one of ``roles`` (or are an owner); any
    other is refused with a 403 page, the refusal recorded as the API records it."""

    def check(request: Request, principal: ConsoleUserDep) -> Principal:
        try:
            return allowed(principal, roles)
        except Forbidden:
            # The path template, never its values; the included route may not carry the
            # console's prefix.
            route = getattr(request.scope.get("route"), "path", None) or "?"
            route = route if route.startswith(PREFIX) else PREFIX + route
            refuse_role(
                services_of(request).ledger,
                principal,
                f"{request.method} {route}",
                roles,
                None,
                auth.now(),
            )
            raise

    check.__name__ = f"console_{'_or_'.join(roles)}"
    return Depends(check)


OwnerPage = Annotated[Principal, require_console_role("owner")]
UserAdminPage = Annotated[Principal, require_console_role("user_admin")]
AuditPage = Annotated[Principal, require_console_role("auditor", "risk_manager")]
RiskManagerPage = Annotated[Principal, require_console_role("risk_manager")]


async def csrf_checked(request: Request, principal: ConsoleUserDep) -> Principal:
    """The signed-in principal, if the request carries their session's CSRF token (form field
    or header); else a 403 page, before the handler writes anything."""
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        form = await request.form()
        field = form.get(CSRF_FIELD)
        given = field if isinstance(field, str) else None
    expected = csrf_token(_key(request), principal.session_id)
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfRefused()
    return principal


class CsrfRefused(Forbidden):
    """A form posted without its session's token: from another site, or an old page."""


CsrfChecked = Annotated[Principal, Depends(csrf_checked)]


# -- the sign-in form's token (no session yet) ----------------------------------------------


def sign_in_nonce(request: Request) -> str:
    """The nonce in the browser's sign-in cookie, or a new one (to be set on the response)."""
    return request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(24)


def sign_in_token(request: Request, nonce: str) -> str:
    return _mac(_key(request), "sign-in", nonce)


def sign_in_token_holds(request: Request, given: str) -> bool:
    nonce = request.cookies.get(SIGN_IN_COOKIE)
    if not nonce or not given:
        return False
    return hmac.compare_digest(given.encode(), sign_in_token(request, nonce).encode())


# -- cookies ---------------------------------------------------------------------------------


def over_tls(request: Request) -> bool:
    """Whether the browser reached us over TLS: directly, or through a trusted proxy that
    says so (the proxies CHARTLEDGER_TRUSTED_PROXIES names, as for client addresses)."""
    if request.url.scheme == "https":
        return True
    proxies = services_of(request).settings.trusted_proxies
    peer = request.client.host if request.client is not None else ""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
    return bool(proxies) and _trusted(peer, proxies) and forwarded == "https"


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """A console cookie: HttpOnly, SameSite=Strict, Path=/console, Secure over TLS; it lasts
    as long as the browser keeps it (the session's own timeouts end it on the server)."""
    response.set_cookie(
        name,
        value,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=over_tls(request),
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path=PREFIX, httponly=True, samesite="strict", secure=over_tls(request)
    )


def flash(request: Request, response: Response, message: str) -> Response:
    """Show ``message`` (an action's outcome, never PHI) on the next page this browser gets."""
    text = base64.urlsafe_b64encode(message.encode()).decode()
    set_cookie(request, response, FLASH_COOKIE, f"{text}.{_mac(_key(request), 'flash', text)}")
    return response


def _read_flash(request: Request) -> str | None:
    held = request.cookies.get(FLASH_COOKIE)
    if not held:
        return None
    text, _, mac = held.partition(".")
    if not hmac.compare_digest(mac.encode(), _mac(_key(request), "flash", text).encode()):
        return None
    try:
        return base64.urlsafe_b64decode(text.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def redirect(request: Request, url: str, message: str | None = None) -> Response:
    """See Other: after a POST, the browser GETs ``url`` (with ``message`` shown there)."""
    response = RedirectResponse(url, status_code=303)
    return response if message is None else flash(request, response, message)


# -- rendering -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    roles: tuple[str, ...] | None  # None: anyone signed in; owners see everything

    def shown_to(self, principal: Principal) -> bool:
        return (
            self.roles is None
            or "owner" in principal.roles
            or any(r in principal.roles for r in self.roles)
        )


ROLE_NAMES = {
    "owner": "owner",
    "clinician": "clinician",
    "staff": "front-desk staff",
    "risk_manager": "risk manager",
    "auditor": "auditor",
    "user_admin": "user administrator",
}


def _when(value: object) -> str:
    """A time as people read it, to the second, with its offset (UTC in the ledger)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return str(value).replace("T", " ")


@functools.cache
def templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["role"] = lambda role: ROLE_NAMES.get(str(role), str(role))
    env.filters["when"] = _when
    return env


def _nav(principal: Principal | None) -> list[NavItem]:
    if principal is None:
        return []
    from api.console.pages import nav_items  # the page families list their own entries

    return [item for item in nav_items() if item.shown_to(principal)]


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """``template`` rendered with ``context``, the signed-in user (if any), their nav, the
    CSRF field (``{{ csrf_input() }}``) and a flash message left by the last redirect."""
    principal: Principal | None = getattr(request.state, "console_principal", None)
    token: str | None = getattr(request.state, "csrf_token", None)

    def csrf_input() -> Markup:
        value = token if token is not None else context.get("sign_in_token", "")
        return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, value)

    flashed = _read_flash(request)
    html = (
        templates()
        .get_template(template)
        .render(
            request=request,
            user=principal,
            user_name=getattr(request.state, "console_user_name", None),
            nav=_nav(principal),
            csrf_input=csrf_input,
            csrf_token=token,
            flash=flashed,
            path=request.url.path,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    if request.cookies.get(FLASH_COOKIE):
        clear_cookie(request, response, FLASH_COOKIE)
    return response


# -- refusals as pages -------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A refusal as the page shows it: the API's status and title, and its detail in words."""

    status: int
    title: str
    detail: str


def problem_of(error: BaseException) -> Problem:
    """The words for ``error``: the API's mapping (``api/errors.py``), which never quotes PHI."""
    if isinstance(error, CsrfRefused):
        return Problem(
            403,
            "Form expired or not from this console",
            "Nothing was changed. Reload the page and try again.",
        )
    if isinstance(error, ValidationError):  # a form checked against the API's own schema
        fields = sorted({str(e["loc"][-1]) for e in error.errors() if e.get("loc")})
        return Problem(422, "Some fields are missing or invalid", ", ".join(fields) or "the form")
    if isinstance(error, RequestValidationError):
        fields = sorted({str(e.get("loc", ("", "?"))[-1]) for e in error.errors() if e.get("loc")})
        return Problem(422, "Some fields are missing or invalid", ", ".join(fields) or "the form")
    if isinstance(error, StarletteHTTPException):
        title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "Refused")
        detail = error.detail if isinstance(error.detail, str) else title
        return Problem(error.status_code, title, detail)
    status, _, title = errors.status_of(error)
    if status == 500:
        return Problem(500, "Something went wrong", "The server could not finish this request.")
    return Problem(status, title, errors.detail_of(error))


def known_refusal(error: Exception) -> Problem:
    """The words for a refusal a page shows in place (a rule, a role, a hold, a bad field);
    anything else is raised on, to ``ConsoleRoute``'s 500 page."""
    problem = problem_of(error)
    if problem.status >= 500 or isinstance(error, SignInRequired):
        raise error
    return problem


def refusal_page(request: Request, error: BaseException) -> Response:
    if isinstance(error, SignInRequired):
        target = f"{PREFIX}/sign-in"
        if request.method == "GET" and request.url.path.startswith(PREFIX + "/"):
            target += "?next=" + quote(request.url.path, safe="/")
        response = RedirectResponse(target, status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            clear_cookie(request, response, SESSION_COOKIE)
        return response
    problem = problem_of(error)
    if problem.status == 500:
        log.error("unexpected %s on %s %s", type(error).__name__, request.method, request.url.path)
    response = render(request, "refusal.html", status_code=problem.status, problem=problem)
    if isinstance(error, TooManyAttempts | store_errors.StoreError):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


class ConsoleRoute(APIRoute):
    """A console route: whatever its handler or dependencies raise is answered as a page (or,
    for a missing session, a redirect to the sign-in page), never as a problem document."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as error:  # every kind is answered as a page, 500 included
                return refusal_page(request, error)

        return handle
