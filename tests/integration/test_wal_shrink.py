"""events/db.py's ``shrink_wal``, on SQLite and on PostgreSQL: after a bulk write SQLite's WAL is
copied back whole and cut to nothing, with every event and its leaf still there; a
reader holding an old snapshot leaves it be (the next automatic checkpoint takes it);
PostgreSQL has nothing to do."""

from __future__ import annotations

import time
from pathlib import Path

from events.ledger import Ledger
from tests.support import QUIET, Chart


def wal(ledger: Ledger) -> Path:
    return ledger.config.home / "chartledger.sqlite3-wal"


def write_some(ledger: Ledger, count: int) -> None:
    for start in range(0, count, 50):
        ledger.save(
            *(Chart(subjects=("patient:1",), text=f"{n}") for n in range(start, start + 50))
        )


def test_after_a_bulk_write_the_wal_is_emptied_and_nothing_is_lost(ledger: Ledger) -> None:
    write_some(ledger, 300)
    sqlite = ledger.db.dialect == "sqlite"
    if sqlite:
        assert wal(ledger).stat().st_size > 0
    events = ledger.db.query("SELECT COUNT(*) FROM stored_events")[0][0]
    assert ledger.db.shrink_wal()
    if sqlite:
        assert wal(ledger).stat().st_size == 0
    # Read back by another ledger (its own connections), from the database file alone.
    other = Ledger(ledger.config, **QUIET)
    try:
        assert other.db.query("SELECT COUNT(*) FROM stored_events")[0][0] == events
        assert other.db.query("SELECT COUNT(*) FROM ledger_leaves")[0][0] >= events
    finally:
        other.close()
    write_some(ledger, 50)  # and writing goes on after it
    assert ledger.db.query("SELECT COUNT(*) FROM stored_events")[0][0] == events + 50


def test_a_reader_on_an_old_snapshot_leaves_the_wal_as_it_is(ledger: Ledger) -> None:
    write_some(ledger, 100)
    other = Ledger(ledger.config, **QUIET)
    try:
        with other.db.read() as c:
            c.execute("SELECT COUNT(*) FROM stored_events")  # the snapshot starts here
            before = c.fetchone()[0]
            write_some(ledger, 100)
            started = time.monotonic()
            emptied = ledger.db.shrink_wal()
            # Without waiting for the reader (the busy timeout is a minute), writer lock held.
            assert time.monotonic() - started < 10
            c.execute("SELECT COUNT(*) FROM stored_events")
            assert c.fetchone()[0] == before  # its snapshot kept whole
        if ledger.db.dialect == "sqlite":
            assert not emptied and wal(ledger).stat().st_size > 0
        assert ledger.db.shrink_wal()  # once the reader is done
    finally:
        other.close()
