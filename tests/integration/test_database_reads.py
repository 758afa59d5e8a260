"""events/db.py's reads, on SQLite and on PostgreSQL: ``read`` is one snapshot that writes
nothing, and ``query`` runs one statement that sees every commit made before it."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import PersistenceError

from events.ledger import Ledger
from tests.support import QUIET, Chart


def leaves(ledger: Ledger) -> int:
    return ledger.db.query("SELECT COUNT(*) FROM ledger_leaves")[0][0]


def test_a_read_sees_one_snapshot_though_another_writer_commits_meanwhile(
    ledger: Ledger,
) -> None:
    other = Ledger(ledger.config, **QUIET)  # its own connections, as another process's
    try:
        with ledger.db.read() as c:
            c.execute("SELECT COUNT(*) FROM ledger_leaves")
            before = c.fetchone()[0]
            other.save(Chart(subjects=("patient:1",), text="a"))
            c.execute("SELECT COUNT(*) FROM ledger_leaves")
            assert c.fetchone()[0] == before
        assert leaves(ledger) == before + 1  # a later statement sees the commit
    finally:
        other.close()


def test_nothing_a_read_tries_to_write_is_kept(ledger: Ledger) -> None:
    before = leaves(ledger)
    # SQLite rolls the read back; PostgreSQL refuses to write in a read-only transaction.
    sqlite = ledger.db.dialect == "sqlite"
    refused = RuntimeError if sqlite else PersistenceError
    message = "reached only" if sqlite else "read-only transaction"
    with pytest.raises(refused, match=message), ledger.db.read() as c:
        c.execute(
            "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
            (10**6, "00000000-0000-0000-0000-000000000001", 1, b"x"),
        )
        raise RuntimeError("reached only where the store allowed the write")
    assert leaves(ledger) == before
    ledger.save(Chart(subjects=("patient:1",), text="a"))  # the connection is still sound
    assert leaves(ledger) == before + 1
