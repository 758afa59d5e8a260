"""Refused requests, written to the ledger before the refusal is answered (issue 17: every
access decision is an audit row).

- A token naming no session: a ``TokenRefusal`` by client address, within the
  ``RefusalBudget`` (``api/refusal_budget.py`` says why and how many).
- A token of a known session that has ended, or with the wrong secret:
  ``Session.RequestRefused`` on that session, under its user (once a minute at most per
  session, ``domain/sessions.py``); a session found expired or revoked on this request is
  ended in the same save.
- A role the caller lacks (403 from ``api/roles.py``): a ``RoleRefusal`` under the caller.
"""

from __future__ import annotations

import copy
import time
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from api.refusal_budget import RefusalBudget
from domain.base import user_subject
from domain.errors import AccountStateError
from domain.refusals import RoleRefusal, TokenRefusal
from domain.sessions import Session
from events.context import acting
from events.ledger import Ledger

if TYPE_CHECKING:
    from api.auth import Principal


def refuse_token(
    ledger: Ledger, budget: RefusalBudget | None, address: str | None, reason: str, at: datetime
) -> None:
    """Record a token that names no session, if the budget allows (no address, no record:
    only an in-process call has none)."""
    if budget is None or address is None:
        return
    suppressed = budget.admit(address, time.monotonic())
    if suppressed is None:
        return
    refusal = TokenRefusal.record(address=address, reason=reason, at=at, suppressed=suppressed)
    with acting(None):
        ledger.save(refusal)


def refuse_session(
    ledger: Ledger, session: Session, reason: str, at: datetime, *, end: bool = False
) -> None:
    """Record a refused request on ``session`` (ending it first with ``reason`` if ``end``),
    under its user and session. A concurrent request that recorded first wins: the request is
    refused either way, and its refusal is on the record once."""
    session = copy.deepcopy(session)  # it may be the hot cache's own object
    try:
        if end:
            session.end(reason=reason, at=at)
        if not session.refuse_request(reason=reason, at=at) and not end:
            return
        with acting(user_subject(session.user_id), str(session.id)):
            ledger.save(session)
    except (IntegrityError, AccountStateError):
        pass


def refuse_role(
    ledger: Ledger,
    principal: Principal,
    route: str,
    roles: tuple[str, ...],
    patient_id: UUID | None,
    at: datetime,
) -> None:
    """Record the principal's request for a route their roles do not open."""
    refusal = RoleRefusal.record(
        user_id=principal.user_id,
        route=route,
        roles_required=list(roles),
        at=at,
        patient_id=patient_id,
    )
    with principal.acting():
        ledger.save(refusal)
