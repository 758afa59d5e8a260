"""Sessions' idle clocks shared by servers on several hosts through the store (PostgreSQL:
api/session_clocks.py; SQLite's one-host file is tests/unit/api/test_activity.py). Two instances
on one store play two hosts."""

from __future__ import annotations

import time
import uuid

import pytest

from api.session_clocks import SharedSessionClocks
from events.ledger import Ledger

TIMEOUT = 60.0

pytestmark = pytest.mark.parametrize("store_config", ["postgres"], indirect=True)


def test_a_use_on_one_host_is_read_by_the_other_when_it_decides_a_timeout(ledger: Ledger) -> None:
    a, b = SharedSessionClocks(ledger.db, TIMEOUT), SharedSessionClocks(ledger.db, TIMEOUT)
    try:
        session = str(uuid.uuid4())
        started = time.time() - 2 * TIMEOUT  # B alone would find it idle
        a[session] = used = time.time()
        a.flush()
        assert b.get(session, started) == pytest.approx(used, abs=0.001)
        other = str(uuid.uuid4())  # used nowhere: idle wherever it is asked
        assert b.get(other, started) == started

        # Many requests on many sessions: kept here, then written as one row per session.
        sessions = [str(uuid.uuid4()) for _ in range(100)]
        for i in range(1000):
            a[sessions[i % 100]] = used + i / 1000
        assert all(a.get(s, started) >= used for s in sessions)  # settled here: nothing read
        a.flush()
        assert ledger.db.query("SELECT count(*) FROM session_clocks") == [(101,)]
    finally:
        a.close()
        b.close()


def test_a_clock_only_moves_forward_and_goes_with_its_session(ledger: Ledger) -> None:
    a, b = SharedSessionClocks(ledger.db, TIMEOUT), SharedSessionClocks(ledger.db, TIMEOUT)
    try:
        session = str(uuid.uuid4())
        now = time.time()
        a[session] = now
        a.flush()
        b[session] = now - 30  # B's older news, sent later, does not move the clock back
        b.flush()
        rows = ledger.db.query("SELECT seen FROM session_clocks")
        assert rows == [(round(now * 1000),)]
        a.pop(session)  # a logout through A: the row goes
        assert ledger.db.query("SELECT seen FROM session_clocks") == []
        assert b.get(session, now - 2 * TIMEOUT) < now - 29  # B knows only its own use now
    finally:
        a.close()
        b.close()
