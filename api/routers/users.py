"""The practice's users: create, list, grant and revoke roles, deactivate, set passwords.

Owners only. Every change is a ledger event under the acting owner's session; the domain also
refuses any non-owner touching an owner, and removing or demoting the last active owner.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api import auth
from api.deps import LedgerDep, ServicesDep
from api.errors import NotFound
from api.roles import Owner
from api.schemas import NewUserOut, PasswordIn, ReasonIn, RoleIn, UserIn, UserOut
from domain.credentials import (
    Account,
    check_may_administer,
    check_may_grant,
    check_owners_remain,
)
from domain.users import User, check_role
from events.ledger import Ledger

router = APIRouter(prefix="/users", tags=["users"])


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


def _owners_after(ledger: Ledger, leaving: UUID) -> int:
    return sum(1 for _, u in accounts(ledger) if u.has_role("owner") and u.id != leaving)


@router.get("")
def list_users(principal: Owner, ledger: LedgerDep) -> list[UserOut]:
    return [_out(a, u) for a, u in accounts(ledger)]


@router.post("", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, principal: Owner, services: ServicesDep) -> NewUserOut:
    """A new user and login account; the TOTP secret (owners, risk managers) is shown once."""
    ledger = services.ledger
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
def grant_role(user_id: UUID, body: RoleIn, principal: Owner, ledger: LedgerDep) -> UserOut:
    account, user = account_of(ledger, user_id)
    actor = auth.load(ledger, principal.user_id, User)
    check_may_administer(actor, user)
    check_may_grant(actor, check_role(body.role))
    user.grant_role(body.role)
    with principal.acting():
        ledger.save(user)
    return _out(account, user)


@router.delete("/{user_id}/roles/{role}")
def revoke_role(user_id: UUID, role: str, principal: Owner, ledger: LedgerDep) -> UserOut:
    account, user = account_of(ledger, user_id)
    check_may_administer(auth.load(ledger, principal.user_id, User), user)
    if check_role(role) == "owner" and user.has_role("owner"):
        check_owners_remain(_owners_after(ledger, user.id))
    user.revoke_role(role)
    with principal.acting():
        ledger.save(user)
    return _out(account, user)


@router.post("/{user_id}/deactivate")
def deactivate(user_id: UUID, body: ReasonIn, principal: Owner, ledger: LedgerDep) -> UserOut:
    """Revoke the user: every session they hold ends now (the next request gets 401)."""
    account, user = account_of(ledger, user_id)
    check_may_administer(auth.load(ledger, principal.user_id, User), user)
    if user.has_role("owner"):
        check_owners_remain(_owners_after(ledger, user.id))
    user.deactivate(reason=body.reason, at=auth.now())
    with principal.acting():
        ledger.save(user)
    return _out(account, user)


@router.put("/{user_id}/password", status_code=status.HTTP_204_NO_CONTENT)
def set_password(user_id: UUID, body: PasswordIn, principal: Owner, services: ServicesDep) -> None:
    """Set a user's password. Set for someone else, it ends all of their sessions."""
    ledger = services.ledger
    account, user = account_of(ledger, user_id)
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
