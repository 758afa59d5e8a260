"""events/db.py's reads, on SQLite and on PostgreSQL: ``read`` is one snapshot that writes
nothing, and ``query`` runs one statement that sees every commit made before it."""

from __future__ import annotations

from typing import Any

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


def tuples(answers: list[list[Any]]) -> list[list[tuple[Any, ...]]]:
    return [[tuple(row) for row in rows] for rows in answers]  # SQLite answers sqlite3.Row


def test_queries_answer_each_statement_as_query_does(ledger: Ledger) -> None:
    for text in "abc":
        ledger.save(Chart(subjects=(f"patient:{text}",), text=text))
    statements = [
        ("SELECT COUNT(*) FROM ledger_leaves", ()),
        ("SELECT position FROM ledger_leaves WHERE position >= ? ORDER BY position", (1,)),
        ("SELECT position FROM ledger_leaves WHERE position > ?", (10**6,)),
    ]
    answers = tuples(ledger.db.queries(statements))
    assert answers == tuples([ledger.db.query(s, p) for s, p in statements])
    assert answers[0] == [(leaves(ledger),)]
    assert answers[1] == [(p,) for p in range(1, leaves(ledger))]
    assert answers[2] == []


def test_each_of_queries_sees_every_commit_made_before_it(ledger: Ledger) -> None:
    other = Ledger(ledger.config, **QUIET)  # its own connections, as another process's
    try:
        before = leaves(ledger)
        other.save(Chart(subjects=("patient:1",), text="a"))
        counts = tuples(ledger.db.queries([("SELECT COUNT(*) FROM ledger_leaves", ())] * 2))
        assert counts == [[(before + 1,)], [(before + 1,)]]
    finally:
        other.close()


def test_a_failing_statement_among_queries_raises_and_leaves_the_store_usable(
    ledger: Ledger,
) -> None:
    with pytest.raises(Exception, match="no_such_table"):
        ledger.db.queries(
            [("SELECT COUNT(*) FROM ledger_leaves", ()), ("SELECT * FROM no_such_table", ())]
        )
    assert ledger.db.queries([("SELECT COUNT(*) FROM ledger_leaves", ())] * 2)[0][0][0] >= 0
