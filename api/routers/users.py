"""The practice's users: create, list, grant and revoke roles, deactivate, reset (an enrollment
code), and (owners only) approve another owner's recovery.

Owners, and user administrators (role ``user_admin``, granted by an owner: an office manager,
say). Who may do what is ``domain/authority.py``: owners anything; a user administrator only
clinician and staff users and roles, never their own account. The changing routes take any
logged-in user, so that anyone else's attempt is refused by the same rules and recorded alike.
Nobody sets another user's password: a reset issues an enrollment code for the user to spend.
Every change is a ledger event under the acting user's session; each refusal is recorded as a
``RefusedAttempt`` event (actor, target, action and what was asked) before the 403 is returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from uuid import UUID

from fastapi import Path, Request, status

from api import auth
from api.auth import Principal
from api.deps import CurrentUser, LedgerDep, Services, ServicesDep
from api.errors import NotFound
from api.openapi import problems
from api.roles import UserAdmin
from api.routing import Router
from api.schemas import (
    NewUserOut,
    PasswordIn,
    ReasonIn,
    RecoveryApprovalOut,
    ResetIn,
    ResetOut,
    RoleIn,
    UserIn,
    UserOut,
)
from api.throttle import client_address
from domain.authority import (
    check_may_administer,
    check_may_grant,
    check_may_reset,
    check_may_reset_authenticator,
)
from domain.credentials import (
    Account,
    RefusedAttempt,
    check_may_approve_recovery,
    check_owners_remain,
)
from domain.errors import InvalidEntry, NotPermitted, UserStateError
from domain.sessions import Session
from domain.users import ROLES, User, check_role
from events.ledger import Ledger

# One of domain.users.ROLES, as the schema says; check_role refuses any other (422 unknown-role).
RoleName = Annotated[str, Path(json_schema_extra={"enum": list(ROLES)})]

router = Router(prefix="/users", tags=["users"])


def accounts(ledger: Ledger) -> list[tuple[Account, User]]:
    """Every account and its user, in the order they were opened."""
    with ledger.db.read() as c:
        c.execute(
            "SELECT originator_id FROM stored_events WHERE topic = ? ORDER BY originator_id",
            ("domain.credentials:Account.Opened",),
        )
        ids = [UUID(str(row[0])) for row in c.fetchall()]
    found = [auth.load(ledger, i, Account) for i in ids]
    return [(a, auth.load(ledger, a.user_id, User)) for a in found]


def account_of(ledger: Ledger, user_id: UUID) -> tuple[Account, User]:
    for account, user in accounts(ledger):
        if user.id == user_id:
            return account, user
    raise NotFound(f"no user {user_id}")


def user_out(account: Account, user: User) -> UserOut:
    return UserOut(
        user_id=user.id,
        username=account.username,
        name=user.name,
        roles=list(user.roles),
        active=user.active,
    )


@contextmanager
def refusals_recorded(
    ledger: Ledger,
    principal: Principal,
    action: str,
    target_id: UUID | None,
    detail: str | None = None,
) -> Iterator[None]:
    """Record a refused administrative action as a ledger event, then refuse (403). ``detail``
    says what was asked beyond the action (never a secret or PHI)."""
    try:
        yield
    except NotPermitted as refused:
        attempt = RefusedAttempt.record(
            actor_id=principal.user_id,
            target_id=target_id,
            action=action,
            reason=str(refused),
            at=auth.now(),
            detail=detail,
        )
        with principal.acting():
            ledger.save(attempt)
        raise


def _owners_after(ledger: Ledger, leaving: UUID) -> int:
    return sum(1 for _, u in accounts(ledger) if u.has_role("owner") and u.id != leaving)


@router.get("")
def list_users(principal: UserAdmin, ledger: LedgerDep) -> list[UserOut]:
    return [user_out(a, u) for a, u in accounts(ledger)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, principal: CurrentUser, services: ServicesDep) -> NewUserOut:
    """A new user and login account, with no password and no authenticator yet: the answer
    carries an enrollment code, shown once, for the administrator to hand to the user, who
    spends it at ``POST /auth/enroll`` to set their password and enroll their authenticator.

    A user administrator creates clinician and staff users only (403, recorded, otherwise). A new
    owner gets no recovery codes here: once logged in with their password and TOTP code, they
    issue their own at ``POST /auth/recovery-codes``."""
    return new_user(services, principal, body.username, body.name, body.role)


def new_user(
    services: Services, principal: Principal, username: str, name: str, role: object
) -> NewUserOut:
    """``POST /users``'s work (and the console's): the rules, the refusal recorded, the save."""
    ledger = services.ledger
    role = check_role(role)
    asked = f"username {username}, role {role}"
    with refusals_recorded(ledger, principal, "create_user", None, asked):
        check_may_grant(auth.load(ledger, principal.user_id, User), role)
    made = auth.new_pending_account(
        services.settings,
        username=username,
        name=name,
        role=role,
        by=principal.user_id,
    )
    with principal.acting():
        ledger.save(made.user, made.account)
    return NewUserOut(
        **user_out(made.account, made.user).model_dump(),
        enrollment_code=made.code,
        expires_at=made.expires_at,
    )


@router.post("/{user_id}/roles")
def grant_role(user_id: UUID, body: RoleIn, principal: CurrentUser, ledger: LedgerDep) -> UserOut:
    """Grant a role. No secret comes back: a user without an authenticator enrolls one with an
    enrollment code (``POST /users/{id}/reset``).

    A user made owner gets no recovery codes here: they issue their own at
    ``POST /auth/recovery-codes`` from a session started with a TOTP code."""
    return granted(ledger, principal, user_id, body.role)


def granted(ledger: Ledger, principal: Principal, user_id: UUID, role: object) -> UserOut:
    """``POST /users/{id}/roles``'s work (and the console's)."""
    account, user = account_of(ledger, user_id)
    actor = auth.load(ledger, principal.user_id, User)
    role = check_role(role)
    with refusals_recorded(ledger, principal, "grant_role", user.id, f"role {role}"):
        check_may_administer(actor, user)
        check_may_grant(actor, role, user)
    user.grant_role(role)
    with principal.acting():
        ledger.save(user)
    return user_out(account, user)


@router.delete("/{user_id}/roles/{role}")
def revoke_role(
    user_id: UUID, role: RoleName, principal: CurrentUser, ledger: LedgerDep
) -> UserOut:
    return revoked(ledger, principal, user_id, role)


def revoked(ledger: Ledger, principal: Principal, user_id: UUID, role: object) -> UserOut:
    """``DELETE /users/{id}/roles/{role}``'s work (and the console's)."""
    account, user = account_of(ledger, user_id)
    actor = auth.load(ledger, principal.user_id, User)
    role = check_role(role)
    with refusals_recorded(ledger, principal, "revoke_role", user.id, f"role {role}"):
        check_may_administer(actor, user)
        check_may_grant(actor, role, user)
        if role == "owner" and user.has_role("owner"):
            check_owners_remain(_owners_after(ledger, user.id))
    user.revoke_role(role)
    with principal.acting():
        ledger.save(user)
    return user_out(account, user)


@router.post("/{user_id}/deactivate")
def deactivate(user_id: UUID, body: ReasonIn, principal: CurrentUser, ledger: LedgerDep) -> UserOut:
    """Revoke the user: every session they hold ends now (the next request gets 401)."""
    return deactivated(ledger, principal, user_id, body.reason)


def deactivated(ledger: Ledger, principal: Principal, user_id: UUID, reason: str) -> UserOut:
    """``POST /users/{id}/deactivate``'s work (and the console's)."""
    account, user = account_of(ledger, user_id)
    with refusals_recorded(ledger, principal, "deactivate", user.id):
        check_may_administer(auth.load(ledger, principal.user_id, User), user)
        if user.has_role("owner"):
            check_owners_remain(_owners_after(ledger, user.id))
    user.deactivate(reason=reason, at=auth.now())
    with principal.acting():
        ledger.save(user)
    return user_out(account, user)


@router.post("/{user_id}/reset")
def reset(
    user_id: UUID, principal: CurrentUser, services: ServicesDep, body: ResetIn | None = None
) -> ResetOut:
    """Reset a user's password: their password stops working, every session of theirs ends,
    and the answer carries a new enrollment code (shown once; it voids any earlier one) for the
    administrator to hand over. The user spends it at ``POST /auth/enroll`` to set a new
    password; their authenticator stays, so a code that goes astray does not let anyone log in
    as them.

    ``{"authenticator": true}`` also forgets their authenticator, so that spending the code
    enrolls a new one: an owner only, from a session started with a TOTP code, and an owner's
    authenticator only by a second owner. A user administrator resets clinician and staff users
    only, and nobody resets themselves (``POST /auth/password``). Refusals: 403, recorded."""
    return reset_user(services, principal, user_id, body is not None and body.authenticator)


def reset_user(
    services: Services, principal: Principal, user_id: UUID, with_authenticator: bool
) -> ResetOut:
    """``POST /users/{id}/reset``'s work (and the console's)."""
    ledger = services.ledger
    account, user = account_of(ledger, user_id)
    actor = auth.load(ledger, principal.user_id, User)
    if with_authenticator:
        session = auth.load(ledger, principal.session_id, Session)
        with refusals_recorded(
            ledger, principal, "reset_authenticator", user.id, "password and authenticator"
        ):
            check_may_reset(actor, user)
            check_may_reset_authenticator(actor, user, session_method=session.method)
    else:
        with refusals_recorded(ledger, principal, "reset", user.id, "password"):
            check_may_reset(actor, user)
    if not user.active:
        raise UserStateError(f"user {user.id} is deactivated")
    at = auth.now()
    if with_authenticator and account.totp_secret is not None:
        account.reset_authenticator(by=principal.user_id, at=at)
    code, expires_at = auth.issue_enrollment_code(
        services.settings, account, principal.user_id, at=at
    )
    user.end_sessions(reason="credentials reset by another user", at=at)
    with principal.acting():
        ledger.save(account, user)
    return ResetOut(
        **user_out(account, user).model_dump(),
        enrollment_code=code,
        expires_at=expires_at,
        authenticator_reset=with_authenticator,
    )


@router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT, responses=problems(429))
def set_password(
    user_id: UUID, body: PasswordIn, request: Request, principal: CurrentUser, services: ServicesDep
) -> None:
    """One's own password change, as ``POST /auth/password`` (``current_password`` and
    ``new_password``). Nobody sets another user's password: that is refused (403) for everyone
    and recorded; an administrator resets it instead (``POST /users/{id}/reset``)."""
    ledger = services.ledger
    if user_id != principal.user_id:
        _account, user = account_of(ledger, user_id)
        with refusals_recorded(ledger, principal, "set_password", user.id):
            raise NotPermitted(
                "nobody sets another user's password: reset it (POST /users/{user_id}/reset) "
                "and hand them the enrollment code"
            )
    if body.current_password is None or body.new_password is None:
        raise InvalidEntry("give current_password and new_password")
    auth.change_own_password(
        ledger,
        services.settings,
        principal,
        body.current_password,
        body.new_password,
        throttle=services.throttle,
        address=client_address(request, services.settings.trusted_proxies),
    )


@router.post("/{user_id}/recovery-approvals", status_code=status.HTTP_201_CREATED)
def approve_recovery(
    user_id: UUID, principal: CurrentUser, services: ServicesDep
) -> RecoveryApprovalOut:
    """Approve another owner's recovery: a one-time code, shown once, to hand to them in person
    (they spend it at ``POST /auth/recover-approved``). Only an owner in a session started with
    a TOTP code approves, never their own; anyone else's attempt is refused (403) and recorded.
    A new approval voids any earlier one for that owner."""
    ledger = services.ledger
    account, user = account_of(ledger, user_id)
    approver = auth.load(ledger, principal.user_id, User)
    session = auth.load(ledger, principal.session_id, Session)
    with refusals_recorded(ledger, principal, "approve_recovery", user.id):
        check_may_approve_recovery(approver, user, session_method=session.method)
    code, expires_at = auth.approve_recovery(services.settings, account, principal.user_id)
    with principal.acting():
        ledger.save(account)
    return RecoveryApprovalOut(user_id=user.id, approval_code=code, expires_at=expires_at)
