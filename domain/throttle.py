"""How long a login attempt must wait, from the failures before it (NIST SP 800-63B §5.2.2).

Failures are counted per account *and* client address (a "pair"), so whoever hammers an
account from their address slows themselves down, not the owner at another address. After
``ThrottlePolicy.failures_before_wait`` failures in a row the pair waits ``first_delay``, and
each later failure doubles the wait, up to ``max_delay``. A pair quiet for ``forget_after``
starts again from nothing; a success from the pair clears it.

Across every address, ``ACCOUNT_LOCK_FAILURES`` failures in a row (none since the last success
or recovery) lock the account for addresses it never logged in from: the limit NIST asks for,
which a spread-out attack can reach without keeping the owner out of their usual workstation.

Pure functions of the failure history: the store that keeps it is ``api/throttle.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import InvalidEntry

# NIST SP 800-63B §5.2.2: no more than 100 consecutive failed attempts on one account.
ACCOUNT_LOCK_FAILURES = 100


@dataclass(frozen=True)
class ThrottlePolicy:
    failures_before_wait: int = 5
    first_delay: timedelta = timedelta(seconds=30)
    max_delay: timedelta = timedelta(hours=1)
    forget_after: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if self.failures_before_wait < 1:
            raise InvalidEntry("failures_before_wait must be at least 1")
        if not timedelta(0) < self.first_delay <= self.max_delay:
            raise InvalidEntry("first_delay must be more than zero and at most max_delay")
        if self.forget_after <= self.max_delay:
            # else sitting out the longest wait would also wipe the slate
            raise InvalidEntry("forget_after must be more than max_delay")


@dataclass(frozen=True)
class PairFailures:
    """A pair's failures in a row (since its last success, or since it was forgotten), and the
    time of the last one."""

    count: int = 0
    last_at: datetime | None = None


def delay_after(count: int, policy: ThrottlePolicy) -> timedelta:
    """The wait after the ``count``-th failure in a row: none before ``failures_before_wait``,
    then ``first_delay``, doubling with each failure, never more than ``max_delay``."""
    doublings = count - policy.failures_before_wait
    if doublings < 0:
        return timedelta(0)
    # 2**doublings outgrows any cap long before it outgrows a float: compare in logs first.
    ratio = policy.max_delay / policy.first_delay
    if doublings >= math.log2(ratio):
        return policy.max_delay
    return min(policy.first_delay * 2**doublings, policy.max_delay)


def current(failures: PairFailures, at: datetime, policy: ThrottlePolicy) -> PairFailures:
    """The failures that still count at ``at``: none once the pair has been quiet long enough."""
    if failures.last_at is None or at - failures.last_at >= policy.forget_after:
        return PairFailures()
    return failures


def wait_until(failures: PairFailures, policy: ThrottlePolicy) -> datetime | None:
    """When the pair may try again; None if it need not wait."""
    delay = delay_after(failures.count, policy)
    if failures.last_at is None or not delay:
        return None
    return failures.last_at + delay


def retry_after(failures: PairFailures, at: datetime, policy: ThrottlePolicy) -> int:
    """Whole seconds the pair must still wait at ``at`` (0: it may try now)."""
    until = wait_until(current(failures, at, policy), policy)
    if until is None or at >= until:
        return 0
    return max(1, math.ceil((until - at).total_seconds()))


def after_failure(failures: PairFailures, at: datetime, policy: ThrottlePolicy) -> PairFailures:
    """The pair's failures once one more, at ``at``, is counted."""
    return PairFailures(current(failures, at, policy).count + 1, at)


def account_locked(failures_in_a_row: int, address_known: bool) -> bool:
    """Whether the account refuses an attempt from an address: only once it has had
    ``ACCOUNT_LOCK_FAILURES`` failures in a row, and never from an address it has logged in
    from before (NIST's allow-list of addresses the subscriber authenticated from)."""
    return failures_in_a_row >= ACCOUNT_LOCK_FAILURES and not address_known
