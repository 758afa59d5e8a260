"""The practice's users: create, list, grant and revoke roles, deactivate, set passwords, and
(owners only) approve another owner's recovery.

Owners, and user administrators (role ``user_admin``, granted by an owner: an office manager,
say). Every change is a ledger event under the acting user's session. The domain refuses any
non-owner touching an owner or a user administrator, granting those roles, or changing their own
roles, and removing or demoting the last active owner; each refusal is recorded as a
``RefusedAttempt`` event before the 403 is returned.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from fastapi import status

from api import auth
from api.auth import Principal
from api.deps import CurrentUser, LedgerDep, ServicesDep
from api.errors import NotFound
from api.roles import UserAdmin
from api.routing import Router
from api.schemas import (
    NewUserOut,
    PasswordIn,
    ReasonIn,
    RecoveryApprovalOut,
    RoleGrantOut,
    RoleIn,
    UserIn,
    UserOut,
)
from domain.credentials import (
    Account,
    RefusedAttempt,
    check_may_administer,
    check_may_approve_recovery,
    check_may_grant,
    check_owners_remain,
)
from domain.errors import NotPermitted
from domain.sessions import Session
from domain.users import User, check_role
from events.ledger import Ledger

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


def _out(account: Account, user: User) -> UserOut:
    return UserOut(
        user_id=user.id,
        username=account.username,
        name=user.name,
        roles=list(user.roles),
        active=user.active,
    )


@contextmanager
def refusals_recorded(
    ledger: Ledger, principal: Principal, action: str, target_id: UUID | None
) -> Iterator[None]:
    """Record a refused administrative action as a ledger event, then refuse (403)."""
    try:
        yield
    except NotPermitted as refused:
        attempt = RefusedAttempt.record(
            actor_id=principal.user_id,
            target_id=target_id,
            action=action,
            reason=str(refused),
            at=auth.now(),
        )
        with principal.acting():
            ledger.save(attempt)
        raise


def _owners_after(ledger: Ledger, leaving: UUID) -> int:
    return sum(1 for _, u in accounts(ledger) if u.has_role("owner") and u.id != leaving)


@router.get("")
def list_users(principal: UserAdmin, ledger: LedgerDep) -> list[UserOut]:
    return [_out(a, u) for a, u in accounts(ledger)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, principal: UserAdmin, services: ServicesDep) -> NewUserOut:
    """A new user and login account; the TOTP secret (owners, risk managers) is shown once.

    A new owner gets no recovery codes here, where whoever created them would see them: once
    logged in with their password and TOTP code, they issue their own at
    ``POST /auth/recovery-codes`` (``GET /auth/me`` counts what they hold)."""
    ledger = services.ledger
    with refusals_recorded(ledger, principal, "create_user", None):
        check_may_grant(auth.load(ledger, principal.user_id, User), check_role(body.role))
    made = auth.new_account(
        services.settings,
        username=body.username,
        name=body.name,
        role=body.role,
        password=body.password,
    )
    with principal.acting():
        ledger.save(made.user, made.account)
    secret = made.totp_secret
    return NewUserOut(
        **_out(made.account, made.user).model_dump(),
        totp_secret=None if secret is None else auth.base32(secret),
        totp_uri=None if secret is None else auth.totp_uri(secret, made.account.username),
    )


@router.post("/{user_id}/roles")
def grant_role(
    user_id: UUID, body: RoleIn, principal: UserAdmin, services: ServicesDep
) -> RoleGrantOut:
    """Grant a role. A role that needs a TOTP code at login (owner, risk manager) granted to a
    user holding no TOTP secret enrolls them, in the same transaction: the secret is shown once,
    as for a new account, for the granting user to hand over in person (without it the user
    could not log in). A user who already has one keeps it, and no secret is returned.

    A user made owner gets no recovery codes here: they issue their own at
    ``POST /auth/recovery-codes`` from a session started with a TOTP code."""
    ledger = services.ledger
    account, user = account_of(ledger, user_id)
    actor = auth.load(ledger, principal.user_id, User)
    with refusals_recorded(ledger, principal, "grant_role", user.id):
        check_may_administer(actor, user)
        check_may_grant(actor, check_role(body.role), user)
    user.grant_role(body.role)
    secret = auth.enroll_totp_if_required(
        services.settings, account, body.role, by=principal.user_id, at=auth.now()
    )
    with principal.acting():
        ledger.save(user, account)  # the account has an event only if it was enrolled
    return RoleGrantOut(
        **_out(account, user).model_dump(),
        totp_secret=None if secret is None else auth.base32(secret),
        totp_uri=None if secret is None else auth.totp_uri(secret, account.username),
    )


@router.delete("/{user_id}/roles/{role}")
def revoke_role(user_id: UUID, role: str, principal: UserAdmin, ledger: LedgerDep) -> UserOut:
    account, user = account_of(ledger, user_id)
    actor = auth.load(ledger, principal.user_id, User)
    with refusals_recorded(ledger, principal, "revoke_role", user.id):
        check_may_administer(actor, user)
        check_may_grant(actor, check_role(role), user)
        if role == "owner" and user.has_role("owner"):
            check_owners_remain(_owners_after(ledger, user.id))
    user.revoke_role(role)
    with principal.acting():
        ledger.save(user)
    return _out(account, user)


@router.post("/{user_id}/deactivate")
def deactivate(user_id: UUID, body: ReasonIn, principal: UserAdmin, ledger: LedgerDep) -> UserOut:
    """Revoke the user: every session they hold ends now (the next request gets 401)."""
    account, user = account_of(ledger, user_id)
    with refusals_recorded(ledger, principal, "deactivate", user.id):
        check_may_administer(auth.load(ledger, principal.user_id, User), user)
        if user.has_role("owner"):
            check_owners_remain(_owners_after(ledger, user.id))
    user.deactivate(reason=body.reason, at=auth.now())
    with principal.acting():
        ledger.save(user)
    return _out(account, user)


@router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def set_password(
    user_id: UUID, body: PasswordIn, principal: UserAdmin, services: ServicesDep
) -> None:
    """Set a user's password. Set for someone else, it ends all of their sessions."""
    ledger = services.ledger
    account, user = account_of(ledger, user_id)
    with refusals_recorded(ledger, principal, "set_password", user.id):
        check_may_administer(auth.load(ledger, principal.user_id, User), user)
    at = auth.now()
    account.change_password(
        password_hash=auth.hash_password(
            auth.check_password(body.password), services.settings.pbkdf2_iterations
        ),
        by=principal.user_id,
        at=at,
    )
    changed = [account]
    if user.id != principal.user_id:
        user.end_sessions(reason="password set by another user", at=at)
        changed.append(user)
    with principal.acting():
        ledger.save(*changed)


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
