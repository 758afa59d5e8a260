"""The Merkle tree stored as tiles (events/tiles.py), on SQLite and PostgreSQL: the tiles agree
with the tree computed from the leaves by verify.merkle, whatever the sizes and splits of the
appends, and proofs read from them are the RFC 9162 proofs."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import tiles
from events.ledger import Ledger
from events.log import leaf_hashes
from tests.support import Chart, patient
from verify.merkle import (
    consistency_proof_from_hashes,
    inclusion_proof_from_hashes,
    root_from_leaf_hashes,
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
