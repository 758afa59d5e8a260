"""The Merkle tree stored as tiles (events/tiles.py), on SQLite and PostgreSQL: the tiles agree
with the tree computed from the leaves by verify.merkle, whatever the sizes and splits of the
appends, and proofs read from them are the RFC 9162 proofs."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import PersistenceError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import tiles
from events.checkpoints import latest_checkpoint
from events.ledger import Ledger
from events.log import LogState, completeness_proof, inclusion_proof, iter_leaves, leaf_hashes
from tests.support import QUIET, Chart, patient
from tests.tamper_tools import raw_sql
from verify.bundle_format import batch_proof
from verify.chain import verify_completeness
from verify.merkle import (
    consistency_proof_from_hashes,
    inclusion_proof_from_hashes,
    leaf_hash,
    root_from_leaf_hashes,
    verify_inclusion,
)


def expected_tiles(hashes: list[bytes]) -> dict[tuple[int, int], bytes]:
    """C2SP tlog-tiles from the leaf hashes, written from the spec: level 0 is the leaf hashes,
    each full tile's root is the next level's entry; every tile, partial ones at their width."""
    found = {}
    level, entries = 0, hashes
    while entries:
        for start in range(0, len(entries), 256):
            found[level, start // 256] = b"".join(entries[start : start + 256])
        entries = [
            root_from_leaf_hashes(entries[i : i + 256]) for i in range(0, len(entries) - 255, 256)
        ]
        level += 1
    return found


def stored_tiles(ledger: Ledger) -> dict[tuple[int, int], bytes]:
    with ledger.db.read() as c:
        c.execute("SELECT level, idx, hashes FROM ledger_tiles")
        return {(level, idx): bytes(h) for level, idx, h in c.fetchall()}


def append(ledger: Ledger, count: int) -> None:
    subjects = (patient(),)
    chart = Chart(subjects=subjects, text="opened")
    for i in range(count - 1):
        chart.note(subjects=subjects, text=f"note {i}")
    ledger.save(chart)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=st.lists(st.integers(1, 300), min_size=1, max_size=4), data=st.data())
def test_the_stored_tiles_are_the_tree_of_the_leaves_whatever_the_appends(
    ledger: Ledger, batches: list[int], data: st.DataObject
) -> None:
    for count in batches:
        append(ledger, count)
    with ledger.db.read() as c:
        size = tiles.tree_size(c)
        hashes = leaf_hashes(c, size)
    assert stored_tiles(ledger) == expected_tiles(hashes)

    # The store outlives an example (it grows from one to the next), so what is drawn must
    # not depend on its size: positions are drawn large and taken modulo the size.
    def below(n: int) -> int:
        return data.draw(st.integers(0, 2**20)) % n

    with ledger.db.read() as c:
        for old in (size, 1 + below(size)):
            assert tiles.root_at(c, old) == root_from_leaf_hashes(hashes[:old])
            reader = tiles.TileReader(c)
            index = below(old)
            assert tiles.inclusion_proof(reader, index, old) == inclusion_proof_from_hashes(
                index, hashes[:old]
            )
            first = 1 + below(old)
            assert tiles.consistency_proof(reader, first, old) == consistency_proof_from_hashes(
                first, hashes[:old]
            )
            wanted = sorted({below(old) for _ in range(3)})
            assert tiles.batch_proof(reader, old, wanted) == batch_proof(hashes[:old], wanted)


class Counting:
    """A cursor that counts what it reads: statements and rows per kind, and the hashes in
    the tiles it returned. Counted, not timed."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._kind = ""
        self.statements: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()
        self.hashes = 0

    def execute(self, sql: str, params: Any = ()) -> Any:
        if "FROM ledger_tiles" in sql:
            self._kind = "tiles"
        elif "SELECT leaf FROM ledger_leaves" in sql:
            self._kind = "leaves"
        else:
            self._kind = "other"
        self.statements[self._kind] += 1
        return self._cursor.execute(sql, params)

    def executemany(self, sql: str, params: Any) -> Any:
        return self._cursor.executemany(sql, params)

    def _count(self, rows: list[Any]) -> None:
        self.rows[self._kind] += len(rows)
        if self._kind == "tiles":
            self.hashes += sum(len(row[-1]) // 32 for row in rows)

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        self._count([] if row is None else [row])
        return row

    def fetchall(self) -> list[Any]:
        rows = self._cursor.fetchall()
        self._count(rows)
        return rows


def levels(size: int) -> int:
    return max(1, (size.bit_length() + 7) // 8)


BIG = 3000  # enough for two levels of tiles


@pytest.fixture
def grown(ledger: Ledger) -> tuple[Ledger, str]:
    """A log of BIG + 1 events signed by a checkpoint, then five more unsigned; the patient of
    the five (who also has two events in the middle of the log)."""
    append(ledger, 1000)
    subjects = (patient(),)
    chart = Chart(subjects=subjects, text="opened")
    chart.note(subjects=subjects, text="second")
    ledger.save(chart)
    append(ledger, BIG - 1002)
    ledger.checkpointer.issue()
    for i in range(5):
        chart.note(subjects=subjects, text=f"later {i}")
        ledger.save(chart)
    return ledger, subjects[0]


def test_a_fresh_process_signs_from_a_few_stored_hashes_and_the_leaves_after_the_checkpoint(
    grown: tuple[Ledger, str],
) -> None:
    ledger, _ = grown
    with ledger.db.read() as c:
        size = tiles.tree_size(c)
        hashes = leaf_hashes(c, size)
    assert size == BIG + 1 + 5
    with ledger.db.read() as c:
        counting = Counting(c)
        root, _ = LogState().roots_at(counting, size)  # no feed, nothing known: a new process
    assert root == root_from_leaf_hashes(hashes)
    assert counting.rows["leaves"] == 5  # only those after the checkpoint
    # the newest tile of each level, for the checkpoint and again for the size signed
    assert counting.statements["tiles"] <= 2 * levels(size)
    assert counting.hashes <= 2 * levels(size) * 256
    # and what it signs in a new process is what the leaves give
    fresh = Ledger(ledger.config, **QUIET)
    try:
        signed = fresh.checkpointer.issue()
    finally:
        fresh.close()
    assert (signed.size, signed.root) == (size, root)


def test_an_inclusion_proof_reads_a_few_tiles_and_no_leaf(grown: tuple[Ledger, str]) -> None:
    ledger, _ = grown
    with ledger.db.read() as c:
        checkpoint = latest_checkpoint(c)
        assert checkpoint is not None
        counting = Counting(c)
        proof = inclusion_proof(counting, 1000, checkpoint.size)
        leaf = next(iter_leaves(c, 1000, 1001))
    verify_inclusion(1000, checkpoint.size, leaf_hash(leaf), proof, checkpoint.root)
    assert counting.rows["leaves"] == 0
    assert counting.statements["tiles"] <= 2 * levels(checkpoint.size)


def test_a_completeness_proof_reads_the_subjects_leaves_and_a_few_tiles_each(
    grown: tuple[Ledger, str],
) -> None:
    ledger, subject = grown
    fresh = Ledger(ledger.config, **QUIET)
    try:
        checkpoint = fresh.checkpointer.issue()  # covers all 7 of the subject's events
    finally:
        fresh.close()
    with ledger.db.read() as c:
        counting = Counting(c)
        proof = completeness_proof(counting, subject, checkpoint.size)
    got = verify_completeness(proof, checkpoint.size, checkpoint.root, checkpoint.subjects_root)
    assert len(got) == 7
    assert counting.rows["leaves"] == 7
    assert counting.statements["tiles"] <= 7 * 2 * levels(checkpoint.size)
    assert counting.statements["other"] <= 4  # heads (two), the subject's positions


def test_a_store_made_before_tiles_gets_them_built_from_the_leaves_when_opened(
    ledger: Ledger,
) -> None:
    append(ledger, 700)
    with ledger.db.read() as c:
        hashes = leaf_hashes(c, tiles.tree_size(c))
    with raw_sql(ledger) as conn:
        conn.execute("DELETE FROM ledger_tiles")
    assert stored_tiles(ledger) == {}
    reopened = Ledger(ledger.config, **QUIET)
    try:
        assert stored_tiles(reopened) == expected_tiles(hashes)
        append(reopened, 3)  # and appends go on from them
        with reopened.db.read() as c:
            hashes = leaf_hashes(c, tiles.tree_size(c))
        assert stored_tiles(reopened) == expected_tiles(hashes)
        # Leaves appended without tiles while the store is open (by a version before tiles):
        # the next append builds them first, inside its own transaction.
        with raw_sql(reopened) as conn:
            conn.execute("DELETE FROM ledger_tiles WHERE level = 0 AND idx = 2")
        append(reopened, 300)
        with reopened.db.read() as c:
            hashes = leaf_hashes(c, tiles.tree_size(c))
        assert stored_tiles(reopened) == expected_tiles(hashes)
    finally:
        reopened.close()


def test_the_database_lets_a_tile_only_grow(ledger: Ledger) -> None:
    append(ledger, 300)  # tile 0/0 full, 0/1 partial
    refused = (sqlite3.DatabaseError, psycopg.Error, PersistenceError)
    statements = [
        ("UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 0", (b"\0" * 8192,)),
        ("UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 1", (b"\0" * 32,)),
        ("DELETE FROM ledger_tiles WHERE level = 0 AND idx = 1", ()),
    ]
    for sql, params in statements:
        with pytest.raises(refused, match="a tile only grows"), ledger.db.write() as c:
            c.execute(sql, params)
    with ledger.db.read() as c:
        c.execute("SELECT hashes FROM ledger_tiles WHERE level = 0 AND idx = 1")
        (partial,) = c.fetchone()
    with ledger.db.write() as c:  # gaining a hash at its end is what an append does
        c.execute(
            "UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 1",
            (bytes(partial) + b"\1" * 32,),
        )


def test_a_damaged_tile_under_a_running_signer_stops_the_checkpoints_not_the_appends(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    append(ledger, 20)
    ledger.checkpointer.issue()
    append(ledger, 5)
    with raw_sql(ledger) as conn:
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        (hashes,) = conn.execute("SELECT hashes FROM ledger_tiles WHERE level = 0").fetchone()
        damaged = bytearray(hashes)
        damaged[32 * 22 + 3] ^= 0x01
        conn.execute(f"UPDATE ledger_tiles SET hashes = {mark} WHERE level = 0", (bytes(damaged),))
    with pytest.raises(tiles.TileMismatch, match="stored tiles give root"):
        ledger.checkpointer.issue()
    with ledger.db.read() as c:
        before = latest_checkpoint(c)
    ledger.checkpointer.every_events = 1  # due at every append from now on
    with caplog.at_level(logging.ERROR):
        append(ledger, 2)  # commits; the checkpoint that fell due is not signed
    with ledger.db.read() as c:
        assert tiles.tree_size(c) == 1 + 20 + 5 + 2
        assert latest_checkpoint(c) == before
    assert "not signed" in caplog.text
