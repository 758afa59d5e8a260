"""events/tiles.py on trees of up to three levels of tiles (more than 65,536 leaves), in a
real SQLite table: whatever the split of the appends, the tiles written are those of C2SP
tlog-tiles computed from the leaf hashes, and roots and proofs read from them are
verify.merkle's."""

from __future__ import annotations

import hashlib
import sqlite3

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import tiles
from tests.integration.test_tiles_store import expected_tiles
from verify.merkle import (
    consistency_proof_from_hashes,
    inclusion_proof_from_hashes,
    root_from_leaf_hashes,
)

MAX_LEAVES = 70_000  # past 65,536: a level-2 entry


def hashes_of(count: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(count)]


ALL = hashes_of(MAX_LEAVES)


def store() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute(tiles.table_statement("sqlite"))
    return conn


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    splits=st.lists(st.integers(1, MAX_LEAVES), min_size=1, max_size=6),
    data=st.data(),
)
def test_appends_in_any_split_write_the_tiles_of_the_leaves(
    splits: list[int], data: st.DataObject
) -> None:
    conn = store()
    cursor = conn.cursor()
    size = 0
    for cut in sorted(set(splits)):
        frontier = tiles.load_frontier(cursor, size)
        assert frontier is not None  # what the last append wrote describes the tree
        tiles.write_tiles(cursor, tiles.extend(frontier, size, ALL[size:cut]))
        size = cut
    cursor.execute("SELECT level, idx, hashes FROM ledger_tiles")
    stored = {(level, idx): hashes for level, idx, hashes in cursor.fetchall()}
    assert stored == expected_tiles(ALL[:size])
    hashes = ALL[:size]
    at = data.draw(st.integers(1, size))
    assert tiles.root_at(cursor, at) == root_from_leaf_hashes(hashes[:at])
    reader = tiles.TileReader(cursor)
    index = data.draw(st.integers(0, at - 1))
    assert tiles.inclusion_proof(reader, index, at) == inclusion_proof_from_hashes(
        index, hashes[:at]
    )
    first = data.draw(st.integers(1, at))
    assert tiles.consistency_proof(reader, first, at) == consistency_proof_from_hashes(
        first, hashes[:at]
    )
    assert reader.reads <= 2 * 3 * 2  # two proofs, at most two tiles a level, three levels


@settings(max_examples=25, deadline=None)
@given(size=st.integers(0, 3000), cut=st.integers(1, 3000))
def test_tiles_that_lag_behind_the_leaves_are_not_taken_for_the_tree(size: int, cut: int) -> None:
    # An append reads the frontier at the log's tip: tiles of a shorter log (written by a
    # version before tiles, or cut) must not pass for it, or it would extend them wrongly.
    conn = store()
    cursor = conn.cursor()
    tiles.write_tiles(cursor, tiles.extend([], 0, ALL[:size]))
    assert tiles.load_frontier(cursor, size) is not None
    assert tiles.load_frontier(cursor, size + cut) is None
