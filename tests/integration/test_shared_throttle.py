"""The login throttle of servers on several hosts (api/shared_throttle.py): its counts in the
PostgreSQL store, seen by every host, a burst spread over hosts getting only the free attempts.
Two instances on one store play two hosts; SQLite's one-host file is
tests/unit/api/test_throttle.py."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from api.errors import TooManyAttempts
from api.shared_throttle import SharedLoginThrottle
from domain.throttle import ThrottlePolicy
from events.ledger import Ledger

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
POLICY = ThrottlePolicy()

pytestmark = pytest.mark.parametrize("store_config", ["postgres"], indirect=True)


def test_hosts_count_one_pair_together_and_a_burst_over_them_gets_only_the_free_ones(
    ledger: Ledger,
) -> None:
    a, b = SharedLoginThrottle(ledger.db, POLICY), SharedLoginThrottle(ledger.db, POLICY)
    account = uuid4()
    for n in range(POLICY.failures_before_wait):
        (a if n % 2 else b).admit(account, "203.0.113.9", AT)
    for host in (a, b):
        with pytest.raises(TooManyAttempts):
            host.admit(account, "203.0.113.9", AT + timedelta(seconds=1))
    b.succeeded(account, "203.0.113.9", AT + timedelta(seconds=2))  # clears it for both
    a.admit(account, "203.0.113.9", AT + timedelta(seconds=3))

    other, admitted, refused = uuid4(), [], []

    def attempt(host: SharedLoginThrottle) -> None:
        try:
            admitted.append(host.admit(other, "198.51.100.7", AT))
        except TooManyAttempts:
            refused.append(1)

    threads = [threading.Thread(target=attempt, args=((a, b)[i % 2],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(admitted), len(refused)) == (POLICY.failures_before_wait, 12 - len(admitted))
