"""Who may release a hold: whoever placed it, or an owner. Another risk manager is refused and
the refusal recorded (``ReleaseRefusal``), so one risk manager cannot lift a colleague's hold to
clear the way for a disposal; they ask an owner, who releases it in their own name.

Refused rather than queued as a request: a release is rare, an owner is reachable, and a
pending request nobody owns would be one more thing to expire and audit.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.errors import DisposalNotPermitted
from legal_hold.holds import Hold
from legal_hold.refusals import ReleaseRefusal

RELEASER_ROLES = ("risk_manager", "owner")


def check_may_release(hold: Hold, by: UUID, roles: Iterable[str]) -> None:
    roles = tuple(roles)
    if "owner" in roles:
        return
    if "risk_manager" not in roles:
        raise DisposalNotPermitted("only a risk manager or an owner may release a hold")
    if hold.placed_by != by:
        raise DisposalNotPermitted(
            f"hold {hold.id} was placed by user {hold.placed_by}: only they or an owner may "
            "release it"
        )


def release(
    ledger: Ledger,
    hold_id: UUID,
    *,
    by: UUID,
    roles: Iterable[str],
    reason: str,
    at: datetime,
    patients: Iterable[UUID] = (),
    custodians: Iterable[UUID] = (),
) -> Hold:
    """Release the hold (or part of it) if ``by`` may; else record the refusal and raise."""
    hold = lh.get_hold(ledger, hold_id)
    try:
        check_may_release(hold, by, roles)
    except DisposalNotPermitted as refused:
        ledger.save(
            ReleaseRefusal.record(
                hold_id=hold.id, placed_by=hold.placed_by, by=by, reason=str(refused), at=at
            )
        )
        raise
    return lh.release_hold(
        ledger, hold_id, reason=reason, at=at, by=by, patients=patients, custodians=custodians
    )
