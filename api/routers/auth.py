"""Logging in (password and TOTP code), out, and back in with a recovery code or with a second
owner's approval (given at ``POST /users/{user_id}/recovery-approvals``); spending an enrollment
code (given at ``POST /users`` or ``POST /users/{user_id}/reset``); one's own password change;
an owner's own new recovery codes."""

from __future__ import annotations

from fastapi import Request, status

from api import auth
from api.deps import CurrentUser, ServicesDep
from api.openapi import problems
from api.routers.users import refusals_recorded
from api.routing import Router
from api.schemas import (
    EnrolledOut,
    EnrollIn,
    LoginIn,
    MeOut,
    PasswordChangeIn,
    RecoverApprovedIn,
    RecoveredOut,
    RecoverIn,
    RecoveryCodesIn,
    RecoveryCodesOut,
    SessionOut,
)
from api.throttle import client_address
from domain.credentials import check_may_issue_recovery_codes
from domain.sessions import Session
from domain.users import User

router = Router(prefix="/auth", tags=["auth"])


@router.post("/login", responses=problems(401, 429))
def login(body: LoginIn, request: Request, services: ServicesDep) -> SessionOut:
    """Start a session. Every success, failure and lockout is a ledger event. Failures are
    counted per username and client address: after a few from one address, that address waits
    (429, ``Retry-After``), longer with each further failure, while the right password and code
    from anywhere else still get in (README, "Login throttling")."""
    token, session = auth.log_in(
        services.ledger,
        services.settings,
        body.username,
        body.password,
        body.totp_code,
        throttle=services.throttle,
        address=_address(request, services),
    )
    return SessionOut(token=token, session_id=session.id, user_id=session.user_id)


@router.post("/enroll", responses=problems(401))
def enroll(body: EnrollIn, request: Request, services: ServicesDep) -> EnrolledOut:
    """Spend an enrollment code (from whoever created or reset the account) to set one's own
    password; an account with no authenticator enrolls one here, and its TOTP secret is shown
    this once, to the user alone. No session starts: log in next with the password and a code
    from the authenticator. A wrong, spent, replaced or expired code is a failed login (401)."""
    account, secret = auth.enroll(
        services.ledger,
        services.settings,
        body.username,
        body.enrollment_code,
        body.new_password,
        address=_address(request, services),
    )
    # A password set anew by whoever was entitled to issue the code: a lock an attacker's
    # failures put on the account's logins is lifted, as a recovery lifts it.
    services.throttle.lift(account.id)
    return EnrolledOut(
        user_id=account.user_id,
        username=account.username,
        totp_secret=None if secret is None else auth.base32(secret),
        totp_uri=None if secret is None else auth.totp_uri(secret, account.username),
    )


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT, responses=problems(429))
def change_password(
    body: PasswordChangeIn, request: Request, principal: CurrentUser, services: ServicesDep
) -> None:
    """Change one's own password, giving the current one (a wrong one is a failed login: 401,
    recorded under the session). Every other session of the user ends at once; this one stays."""
    auth.change_own_password(
        services.ledger,
        services.settings,
        principal,
        body.current_password,
        body.new_password,
        throttle=services.throttle,
        address=_address(request, services),
    )


@router.post("/recover", responses=problems(401))
def recover(body: RecoverIn, request: Request, services: ServicesDep) -> SessionOut:
    """Spend a one-time recovery code to set a new password; ends the user's other sessions.
    Never throttled or locked out; lifts a lock on the account's logins."""
    token, session = auth.recover(
        services.ledger,
        services.settings,
        body.username,
        body.recovery_code,
        body.new_password,
        throttle=services.throttle,
        address=_address(request, services),
    )
    return SessionOut(token=token, session_id=session.id, user_id=session.user_id)


@router.post("/recover-approved", responses=problems(401))
def recover_approved(
    body: RecoverApprovedIn, request: Request, services: ServicesDep
) -> RecoveredOut:
    """Spend a second owner's approval code to set a new password; the account also gets a new
    TOTP secret, shown once here. Ends the user's other sessions. Never throttled or locked
    out; lifts a lock on the account's logins."""
    token, session, secret = auth.recover_with_approval(
        services.ledger,
        services.settings,
        body.username,
        body.approval_code,
        body.new_password,
        throttle=services.throttle,
        address=_address(request, services),
    )
    return RecoveredOut(
        token=token,
        session_id=session.id,
        user_id=session.user_id,
        totp_secret=auth.base32(secret),
        totp_uri=auth.totp_uri(secret, body.username),
    )


@router.post("/recovery-codes", status_code=status.HTTP_201_CREATED, responses=problems(429))
def issue_recovery_codes(
    body: RecoveryCodesIn, request: Request, principal: CurrentUser, services: ServicesDep
) -> RecoveryCodesOut:
    """An owner issues themselves ten new recovery codes, shown once here and kept only as their
    hashes; every earlier code, used or not, stops working. An owner created later, or made one,
    has none until they do this; so does anyone who has spent or lost theirs (recovering with a
    code or an approval issues none).

    Needs a session started with a password and a TOTP code (not one begun with a recovery code
    or an approval: log in again first) and the current password again in the body. A non-owner
    or such a session is refused (403) and the attempt recorded; a wrong password is a failed
    login (401), recorded under the session and throttled as a login is (429)."""
    ledger = services.ledger
    user = auth.load(ledger, principal.user_id, User)
    session = auth.load(ledger, principal.session_id, Session)
    with refusals_recorded(ledger, principal, "issue_recovery_codes", user.id):
        check_may_issue_recovery_codes(user, session_method=session.method)
    codes = auth.issue_recovery_codes(
        ledger,
        services.settings,
        principal,
        body.password,
        throttle=services.throttle,
        address=_address(request, services),
    )
    return RecoveryCodesOut(recovery_codes=codes)


def _address(request: Request, services: ServicesDep) -> str:
    return client_address(request, services.settings.trusted_proxies)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: CurrentUser, services: ServicesDep) -> None:
    auth.log_out(services.ledger, principal, services.last_seen)


@router.get("/me")
def me(principal: CurrentUser, services: ServicesDep) -> MeOut:
    """Who is calling, and how many unused recovery codes their account holds (a count only:
    an owner at 0 should issue new ones at ``POST /auth/recovery-codes``)."""
    # Through the hot cache: the account's events (every login and failure) are replayed once
    # per process, and each call reads only what was appended since, by any process.
    account = auth.account_of_user(services.ledger, principal.user_id, hot=True)
    return MeOut(
        user_id=principal.user_id,
        roles=list(principal.roles),
        session_id=principal.session_id,
        recovery_codes_remaining=len(account.recovery_codes),
    )
