"""Users: the list, a new user (its one-time enrollment code shown once), roles granted and
revoked, a reset (a new enrollment code) and deactivation with a reason. The rules are the
API's (``api/routers/users.py`` and ``domain/authority.py``): a user administrator manages
clinician and staff users only, and every refusal is recorded and shown on the page."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.console.web import (
    PREFIX,
    ConsoleRoute,
    CsrfChecked,
    NavItem,
    Problem,
    UserAdminPage,
    known_refusal,
    redirect,
    render,
    services_of,
)
from api.routers import users as service
from api.schemas import ReasonIn, UserIn
from domain.users import ROLES

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("Users", PREFIX + "/users", ("user_admin",))]


def _list(
    request: Request, *, problem: Problem | None = None, form: dict | None = None
) -> Response:
    ledger = services_of(request).ledger
    people = [service.user_out(a, u) for a, u in service.accounts(ledger)]
    return render(
        request,
        "users/list.html",
        status_code=200 if problem is None else problem.status,
        title="Users",
        people=people,
        roles=ROLES,
        problem=problem,
        form=form or {},
    )


def _detail(request: Request, user_id: UUID, *, problem: Problem | None = None) -> Response:
    ledger = services_of(request).ledger
    account, user = service.account_of(ledger, user_id)
    person = service.user_out(account, user)
    return render(
        request,
        "users/detail.html",
        status_code=200 if problem is None else problem.status,
        title=person.name,
        person=person,
        roles=[r for r in ROLES if r not in person.roles],
        problem=problem,
    )


@router.get("/users")
def users_page(request: Request, principal: UserAdminPage) -> Response:
    return _list(request)


@router.post("/users")
def create_user(
    request: Request,
    checked: CsrfChecked,
    principal: UserAdminPage,
    username: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
) -> Response:
    form = {"username": username, "name": name, "role": role}
    try:
        body = UserIn(username=username.strip(), name=name.strip(), role=role)
        made = service.new_user(services_of(request), principal, body.username, body.name, role)
    except Exception as error:
        return _list(request, problem=known_refusal(error), form=form)
    return render(
        request,
        "users/code.html",
        title="Enrollment code",
        heading=f"User {made.username} created",
        person=made,
        code=made.enrollment_code,
        expires_at=made.expires_at,
    )


@router.get("/users/{user_id}")
def user_page(request: Request, user_id: UUID, principal: UserAdminPage) -> Response:
    return _detail(request, user_id)


@router.post("/users/{user_id}/roles")
def grant_role(
    request: Request,
    user_id: UUID,
    checked: CsrfChecked,
    principal: UserAdminPage,
    role: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.granted(services_of(request).ledger, principal, user_id, role)
    except Exception as error:
        return _detail(request, user_id, problem=known_refusal(error))
    return redirect(request, f"{PREFIX}/users/{user_id}", "Role granted.")


@router.post("/users/{user_id}/roles/revoke")
def revoke_role(
    request: Request,
    user_id: UUID,
    checked: CsrfChecked,
    principal: UserAdminPage,
    role: Annotated[str, Form()] = "",
) -> Response:
    try:
        service.revoked(services_of(request).ledger, principal, user_id, role)
    except Exception as error:
        return _detail(request, user_id, problem=known_refusal(error))
    return redirect(request, f"{PREFIX}/users/{user_id}", "Role revoked.")


@router.post("/users/{user_id}/reset")
def reset(
    request: Request,
    user_id: UUID,
    checked: CsrfChecked,
    principal: UserAdminPage,
    authenticator: Annotated[str, Form()] = "",
) -> Response:
    try:
        done = service.reset_user(services_of(request), principal, user_id, authenticator == "on")
    except Exception as error:
        return _detail(request, user_id, problem=known_refusal(error))
    return render(
        request,
        "users/code.html",
        title="Enrollment code",
        heading=f"{done.name}'s password was reset",
        person=done,
        code=done.enrollment_code,
        expires_at=done.expires_at,
        authenticator_reset=done.authenticator_reset,
    )


@router.post("/users/{user_id}/deactivate")
def deactivate(
    request: Request,
    user_id: UUID,
    checked: CsrfChecked,
    principal: UserAdminPage,
    reason: Annotated[str, Form()] = "",
) -> Response:
    try:
        body = ReasonIn(reason=reason.strip())
        service.deactivated(services_of(request).ledger, principal, user_id, body.reason)
    except Exception as error:
        return _detail(request, user_id, problem=known_refusal(error))
    return redirect(request, f"{PREFIX}/users/{user_id}", "User deactivated; their sessions ended.")
