"""The subject-heads tree's leaves stored as the log grows (events/heads.py, ``ledger_heads``), on
SQLite and PostgreSQL: the stored rows are the heads the leaves give, whatever the appends; a
fresh process signs from them without reading a leaf before the checkpoint; a flipped stored
hash stops the signer and is named by `chartledger verify`; the database lets a head only
move forward; a store without them gets them when opened."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from eventsourcing.persistence import PersistenceError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import heads, store, tiles
from events.ledger import Ledger
from events.log import LogState, head_rows_at, iter_leaves, subject_heads_root
from events.verification import verify_configured_store
from tests.integration.test_tiles_store import Counting
from tests.support import QUIET, Chart, patient
from tests.tamper_tools import raw_sql
from verify.heads import check_heads
from verify.merkle import leaf_hash
from verify.records import head_bytes, parse_leaf

POOL = [patient() for _ in range(12)]


def heads_from_leaves(ledger: Ledger, size: int) -> list[tuple[str, int, int]]:
    """Each subject's newest link below ``size``, read from the leaves (§7), in UTF-8 order."""
    found: dict[str, tuple[int, int]] = {}
    with ledger.db.read() as c:
        for position, leaf in enumerate(iter_leaves(c, 0, size)):
            for subject, seq, _ in parse_leaf(leaf).links:
                found[subject] = (seq, position)
    return sorted(((s, *h) for s, h in found.items()), key=lambda h: h[0].encode())


@pytest.fixture
def merging(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's writer merges every append's links (and so writes the heads table) at once."""
    monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 1)


def settled_heads(ledger: Ledger) -> list[tuple[str, int, int]]:
    """Each subject's newest link outside ledger_links_recent: what the table holds."""
    with ledger.db.read() as c:
        c.execute(
            "SELECT subject, seq, position FROM ledger_links_main "
            "UNION ALL SELECT subject, seq, position FROM ledger_links_mid"
        )
        found: dict[str, tuple[int, int]] = {}
        for subject, seq, position in c.fetchall():
            if seq > found.get(subject, (0, 0))[0]:
                found[subject] = (seq, position)
    return [(s, *h) for s, h in found.items()]


def stored(ledger: Ledger) -> dict[str, tuple[int, int, bytes]]:
    with ledger.db.read() as c:
        return {s: (seq, p, h) for s, seq, p, h in heads.stored_heads(c)}


def save(ledger: Ledger, picks: list[int]) -> None:
    ledger.save(*[Chart(subjects=(POOL[i],), text="seen") for i in picks])


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    batches=st.lists(st.lists(st.integers(0, len(POOL) - 1), min_size=1, max_size=30), max_size=4),
    data=st.data(),
)
def test_the_stored_heads_are_the_heads_tree_of_the_leaves_whatever_the_appends(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, batches: list[list[int]], data: st.DataObject
) -> None:
    monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 7)  # SQLite: some links merged, some recent
    for picks in batches:
        save(ledger, picks)
    with ledger.db.read() as c:
        size = tiles.tree_size(c)
    assert stored(ledger) == {
        s: (seq, p, leaf_hash(head_bytes(s, seq, p))) for s, seq, p in settled_heads(ledger)
    }
    with ledger.db.read() as c:
        rows = head_rows_at(c, size)
    expected = heads_from_leaves(ledger, size)
    assert rows == [(s, seq, p, leaf_hash(head_bytes(s, seq, p))) for s, seq, p in expected]
    # at an earlier size too: the rows moved since fall back to their link before it
    at = data.draw(st.integers(0, 2**20)) % (size + 1)
    with ledger.db.read() as c:
        rows = head_rows_at(c, at)
    older = heads_from_leaves(ledger, at)
    assert [r[:3] for r in rows] == older
    assert [r[3] for r in rows] == [leaf_hash(head_bytes(*h)) for h in older]
    with ledger.db.read() as c:
        assert check_heads(lambda sql: _rows(c, sql)) == []


def _rows(cursor: object, sql: str) -> list[tuple[object, ...]]:
    cursor.execute(sql)  # type: ignore[attr-defined]
    return cursor.fetchall()  # type: ignore[attr-defined, no-any-return]


def grow(ledger: Ledger) -> int:
    """A log over the pool, signed, then three events after the checkpoint; its size."""
    for start in range(0, 240, 40):
        save(ledger, [(start + i) % len(POOL) for i in range(40)])
    ledger.checkpointer.issue()
    save(ledger, [0, 1, 0])
    with ledger.db.read() as c:
        return tiles.tree_size(c)


def test_a_fresh_process_reads_one_row_per_subject_and_no_leaf_before_the_checkpoint(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 64)  # SQLite: fewer than 64 links recent
    size = grow(ledger)
    with ledger.db.read() as c:
        counting = Counting(c)
        _, subjects_root = LogState().roots_at(counting, size)  # a new process: nothing known
    assert subjects_root == subject_heads_root(heads_from_leaves(ledger, size))
    assert counting.rows["leaves"] == 3  # only those after the checkpoint
    # Counted, not timed: the keys, the checkpoint, the heads (one row per subject), the
    # recent links (fewer than a merge's worth), and for the subjects seen since the checkpoint
    # one link lookup each; nothing grows with the log.
    assert counting.rows["other"] <= 2 + len(POOL) + 64 + 2
    assert counting.statements["other"] <= 5 + 2


@pytest.mark.usefixtures("merging")
def test_a_checkpoint_due_inside_an_append_signs_the_heads_the_append_wrote(
    ledger: Ledger,
) -> None:
    save(ledger, [0, 1])
    ledger.checkpointer.every_events = 1  # due at the next append, signed inside it
    save(ledger, [1, 2, 2])
    with ledger.db.read() as c:
        size = tiles.tree_size(c)
        c.execute("SELECT MAX(size) FROM ledger_checkpoints")
        (signed,) = c.fetchone()
    assert signed == size
    fresh = Ledger(ledger.config, **QUIET)  # and a new process starts from it
    try:
        save(fresh, [3])
        assert fresh.checkpointer.issue().size == size + 1
    finally:
        fresh.close()


@pytest.mark.usefixtures("merging")
def test_a_flipped_stored_head_hash_stops_the_signer_and_is_named(ledger: Ledger) -> None:
    grow(ledger)
    subjects = sorted(stored(ledger), key=str.encode)
    # one whose head is under the checkpoint (grow saw POOL[0] and POOL[1] after it)
    index, victim = next((i, s) for i, s in enumerate(subjects) if s not in POOL[:2])
    with raw_sql(ledger) as conn:
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        (hash_,) = conn.execute(
            f"SELECT hash FROM ledger_heads WHERE subject = {mark}", (victim,)
        ).fetchone()
        damaged = bytearray(hash_)
        damaged[7] ^= 0x01
        conn.execute(
            f"UPDATE ledger_heads SET hash = {mark} WHERE subject = {mark}",
            (bytes(damaged), victim),
        )
    fresh = Ledger(ledger.config, **QUIET)
    try:
        with pytest.raises(tiles.TileMismatch, match="subject-heads root"):
            fresh.checkpointer.issue()
    finally:
        fresh.close()
    report, _, _ = verify_configured_store(ledger, workers=1)
    lines = [p.line() for p in report.problems]
    assert lines == [f"FAIL: ledger_heads leaf {index}: stored hash {damaged.hex()[:8]}…, "
                     f"the head gives {bytes(hash_).hex()[:8]}…"]  # fmt: skip
    assert victim.split(":")[1] not in lines[0]  # no subject named


@pytest.mark.usefixtures("merging")
def test_the_database_lets_a_head_only_move_forward(ledger: Ledger) -> None:
    save(ledger, [0, 0, 1])
    refused = (sqlite3.DatabaseError, psycopg.Error, PersistenceError)
    statements = [
        ("UPDATE ledger_heads SET seq = 1, position = 0 WHERE subject = ?", (POOL[0],)),
        ("UPDATE ledger_heads SET hash = ? WHERE subject = ?", (b"\0" * 32, POOL[0])),
        ("DELETE FROM ledger_heads WHERE subject = ?", (POOL[1],)),
    ]
    for sql, params in statements:
        with pytest.raises(refused, match="a head only moves forward"), ledger.db.write() as c:
            c.execute(sql, params)
    assert stored(ledger)[POOL[0]][0] == 2


@pytest.mark.usefixtures("merging")
def test_a_store_without_stored_heads_gets_them_from_the_links_when_opened(
    ledger: Ledger,
) -> None:
    size = grow(ledger)
    before = stored(ledger)
    with raw_sql(ledger) as conn:
        conn.execute("DELETE FROM ledger_heads")
    with ledger.db.read() as c:  # read from the links meanwhile, not taken as no subjects
        assert [r[:3] for r in head_rows_at(c, size)] == heads_from_leaves(ledger, size)
    reopened = Ledger(ledger.config, **QUIET)
    try:
        assert stored(reopened) == before
        save(reopened, [3])
        assert stored(reopened)[POOL[3]][0] == before[POOL[3]][0] + 1
    finally:
        reopened.close()
