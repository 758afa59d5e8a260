"""``GET /status``: how the server's background loops are doing (``api/status.py``), for
owners and auditors. ``/health`` gives anyone one word of it."""

from __future__ import annotations

from typing import Annotated

from api.auth import Principal
from api.deps import LedgerDep
from api.roles import require_role
from api.routing import Router
from api.status import BackgroundStatus, background_status
from events.loop_beats import read_shared

router = Router(tags=["health"])

StatusReader = Annotated[Principal, require_role("auditor")]  # and owners


@router.get("/status")
def status(principal: StatusReader, ledger: LedgerDep) -> BackgroundStatus:
    """The checkpoint signer's, the views follower's and the hold notices' last good round,
    last failure (its exception type) and whether each is late; read from their heartbeats
    (on PostgreSQL the group's too), not the ledger."""
    return background_status(ledger.config.home, shared=lambda: read_shared(ledger.db))
