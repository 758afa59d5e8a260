"""Who may grant what, and who may change or reset whose account.

Owners administer everyone and grant any role. A user administrator (``user_admin``, granted by
an owner: an office manager, say) administers only users whose roles are all among
``USER_ADMIN_ROLES`` (clinician, staff), grants only those roles, never touches their own
account, and never learns anyone's password: a reset issues an enrollment code that the user
spends themselves (``Account.issue_enrollment_code``). Resetting an authenticator takes an owner,
and an owner's authenticator is reset by a second owner, never by themselves.

Each check raises ``NotPermitted``; the API records every one as a ``RefusedAttempt`` before it
answers 403.
"""

from __future__ import annotations

from domain.errors import NotPermitted
from domain.users import User

# The roles a user administrator may grant, revoke and administer. Every other role can open
# every chart's audit trail, export, dispose or administer, so only an owner hands it out.
USER_ADMIN_ROLES = ("clinician", "staff")


def _check_active(actor: User) -> None:
    if not actor.active:
        raise NotPermitted(f"user {actor.id} is deactivated")


def check_may_administer(actor: User, target: User) -> None:
    """Change, deactivate or reset ``target``: an owner anyone; a user administrator only
    another user who holds no role beyond clinician and staff."""
    _check_active(actor)
    if actor.has_role("owner"):
        return
    if not actor.has_role("user_admin"):
        raise NotPermitted("only an owner or a user administrator administers users")
    if target.id == actor.id:
        raise NotPermitted("only an owner may change their own roles or account")
    beyond = [r for r in target.roles if r not in USER_ADMIN_ROLES]
    if beyond:
        raise NotPermitted(
            f"a user administrator administers only clinician and staff users; user "
            f"{target.id} holds {', '.join(beyond)}"
        )


def check_may_grant(actor: User, role: str, target: User | None = None) -> None:
    """Grant or revoke ``role`` (to a new user when ``target`` is None): an owner any role; a
    user administrator clinician or staff, never to themselves."""
    _check_active(actor)
    if actor.has_role("owner"):
        return
    if not actor.has_role("user_admin"):
        raise NotPermitted("only an owner or a user administrator grants roles")
    if role not in USER_ADMIN_ROLES:
        raise NotPermitted(f"only an owner may grant or revoke the role {role}")
    if target is not None and target.id == actor.id:
        raise NotPermitted("only an owner may change their own roles")


def check_may_reset(actor: User, target: User) -> None:
    """Reset ``target``'s password (an enrollment code for them). Never one's own: that is a
    password change, with the current password (``POST /auth/password``)."""
    if target.id == actor.id:
        raise NotPermitted("change your own password with your current password instead")
    check_may_administer(actor, target)


def check_may_reset_authenticator(actor: User, target: User, *, session_method: str) -> None:
    """Reset ``target``'s authenticator: an owner, in a session started with a TOTP code (a
    session begun with a recovery code skipped the second factor), never their own (an owner who
    lost theirs asks a second owner, or recovers with that owner's approval)."""
    _check_active(actor)
    if not actor.has_role("owner"):
        raise NotPermitted("only an owner resets an authenticator")
    if "totp" not in session_method.split("+"):
        raise NotPermitted("resetting an authenticator needs a session started with a TOTP code")
    if target.id == actor.id:
        raise NotPermitted("an owner's authenticator is reset by a second owner")
