"""Logging in (password, and TOTP where required), out, and back in with a recovery code or
with a second owner's approval (given at ``POST /users/{user_id}/recovery-approvals``)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api import auth
from api.deps import CurrentUser, ServicesDep
from api.schemas import LoginIn, MeOut, RecoverApprovedIn, RecoveredOut, RecoverIn, SessionOut

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post("/login")
def login(body: LoginIn, services: ServicesDep) -> SessionOut:
    """Start a session. Every success, failure and lockout is a ledger event."""
    token, session = auth.log_in(
        services.ledger, services.settings, body.username, body.password, body.totp_code
    )
    return SessionOut(token=token, session_id=session.id, user_id=session.user_id)


@router.post("/recover")
def recover(body: RecoverIn, services: ServicesDep) -> SessionOut:
    """Spend a one-time recovery code to set a new password; ends the user's other sessions."""
    token, session = auth.recover(
        services.ledger, services.settings, body.username, body.recovery_code, body.new_password
    )
    return SessionOut(token=token, session_id=session.id, user_id=session.user_id)


@router.post("/recover-approved")
def recover_approved(body: RecoverApprovedIn, services: ServicesDep) -> RecoveredOut:
    """Spend a second owner's approval code to set a new password; the account also gets a new
    TOTP secret, shown once here. Ends the user's other sessions."""
    token, session, secret = auth.recover_with_approval(
        services.ledger, services.settings, body.username, body.approval_code, body.new_password
    )
    return RecoveredOut(
        token=token,
        session_id=session.id,
        user_id=session.user_id,
        totp_secret=auth.base32(secret),
        totp_uri=auth.totp_uri(secret, body.username),
    )


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: CurrentUser, services: ServicesDep) -> None:
    auth.log_out(services.ledger, principal, services.last_seen)


@router.get("/me")
def me(principal: CurrentUser) -> MeOut:
    return MeOut(
        user_id=principal.user_id, roles=list(principal.roles), session_id=principal.session_id
    )
