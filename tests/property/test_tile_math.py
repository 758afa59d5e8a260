"""Roots and proofs computed from tiles alone (C2SP tlog-tiles), by the test's own reading of the
spec (tests/reference_tiles.py) and by the server's (events/tiles.py), agree with RFC 9162
computed from the leaves (tests/reference_merkle.py) on random trees, and with the
transparency-dev/merkle vectors in $CHARTLEDGER_VECTORS where those apply (trees of up to 8 of
RFC 6962's test leaves: one partial tile at width 256, several levels at width 2 and 4)."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.tile_paths import parse_index, parse_level, tile_path
from events.tiles import (
    CACHED_TILES,
    TILE_WIDTH,
    TileReader,
    batch_proof,
    consistency_proof,
    inclusion_proof,
)
from tests import reference_merkle
from tests.reference_tiles import TiledTree, consistent, path_of, tiles_from_entries
from verify import bundle_format
from verify.merkle import leaf_hash

VECTORS = Path(
    os.environ.get("CHARTLEDGER_VECTORS")
    or Path(__file__).resolve().parents[3] / "shared" / "vectors" / "rfc9162"
)
# RFC 6962's test leaves, from which transparency-dev/merkle's vectors are made.
RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        *("", "00", "10", "2021", "3031", "40414243"),
        *("5051525354555657", "606162636465666768696a6b6c6d6e6f"),
    )
]


def entries_of(size: int, salt: int) -> list[bytes]:
    return [f"{salt}:{i}".encode() for i in range(size)]


def tree_of(entries: list[bytes], full: int) -> TiledTree:
    tiles = tiles_from_entries(entries, full)

    def fetch(level: int, n: int, width: int) -> bytes:
        hashes = tiles[(level, n)]
        assert len(hashes) >= width
        return b"".join(hashes[:width])

    return TiledTree(len(entries), fetch, full)


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 300),
    full=st.sampled_from([2, 4, 16, 256]),
    salt=st.integers(0, 2**16),
    data=st.data(),
)
def test_the_tests_tile_math_is_rfc_9162(size: int, full: int, salt: int, data) -> None:  # type: ignore[no-untyped-def]
    entries = entries_of(size, salt)
    tree = tree_of(entries, full)
    assert tree.root() == reference_merkle.mth(entries)
    m = data.draw(st.integers(0, size - 1), label="leaf")
    assert tree.path(m) == reference_merkle.path(m, entries)
    old = data.draw(st.integers(1, size), label="old size")
    proof = tree.proof(old)
    assert proof == reference_merkle.proof(old, entries)
    old_root = reference_merkle.mth(entries[:old])
    assert consistent(old, size, old_root, tree.root(), proof)
    if proof:  # a flipped bit anywhere in the proof is refused
        i = data.draw(st.integers(0, len(proof) - 1), label="flipped")
        bad = [*proof]
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not consistent(old, size, old_root, tree.root(), bad)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 1400), salt=st.integers(0, 2**16), data=st.data())
def test_the_servers_tile_proofs_agree_with_the_tests(size: int, salt: int, data) -> None:  # type: ignore[no-untyped-def]
    """events/tiles.py's proofs over tiles the test made (in a table of a real SQLite database,
    as the store keeps them) are the test's, and read at most two tiles a level."""
    entries = entries_of(size, salt)
    tiles = tiles_from_entries(entries, 256)
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE ledger_tiles (level INTEGER, idx INTEGER, hashes BLOB)")
    db.executemany(
        "INSERT INTO ledger_tiles VALUES (?, ?, ?)",
        [(level, n, b"".join(hashes)) for (level, n), hashes in tiles.items()],
    )
    expected = tree_of(entries, 256)
    old = data.draw(st.integers(1, size), label="old size")
    reader = TileReader(db.cursor())
    assert consistency_proof(reader, old, size) == expected.proof(old)
    assert reader.reads <= 2 * (1 + (size > 255))
    m = data.draw(st.integers(0, size - 1), label="leaf")
    assert inclusion_proof(TileReader(db.cursor()), m, size) == expected.path(m)
    assert reader.root(0, size) == expected.root()


class TilesInMemory(TileReader):
    """The server's reader over tiles the test made, noting every tile it asks for."""

    def __init__(self, tiles: dict[tuple[int, int], list[bytes]]) -> None:
        super().__init__(None)
        self.tiles = tiles
        self.asked: list[tuple[int, int]] = []

    def _read(self, level: int, index: int) -> bytes:
        self.asked.append((level, index))
        return b"".join(self.tiles.get((level, index), []))


@settings(max_examples=12, deadline=None)
@given(
    tiles_spanned=st.integers(CACHED_TILES + 1, CACHED_TILES + 60),
    salt=st.integers(0, 2**16),
    data=st.data(),
)
def test_a_batch_proof_over_more_tiles_than_a_reader_keeps_reads_each_tile_once(  # type: ignore[no-untyped-def]
    tiles_spanned: int, salt: int, data
) -> None:
    """A production's batch proof touches a tile for each of its events: the reader keeps no
    more than CACHED_TILES of them, yet asks for none twice, and the proof is the one the
    bundle's verifier computes from every leaf."""
    size = tiles_spanned * TILE_WIDTH - data.draw(st.integers(0, TILE_WIDTH - 1), label="short")
    entries = entries_of(size, salt)
    every = st.lists(st.integers(0, size - 1), min_size=1, max_size=400, unique=True)
    positions = sorted(data.draw(every, label="positions"))
    spread = [min(t * TILE_WIDTH + salt % TILE_WIDTH, size - 1) for t in range(tiles_spanned)]
    positions = sorted({*positions, *spread})
    reader = TilesInMemory(tiles_from_entries(entries, TILE_WIDTH))
    proof = batch_proof(reader, size, positions)
    assert proof == bundle_format.batch_proof([leaf_hash(e) for e in entries], positions)
    assert len(reader.asked) == len(set(reader.asked))  # each tile read once
    assert 0 < reader.cached <= CACHED_TILES < len(set(reader.asked))


@given(level=st.integers(0, 63), index=st.integers(0, 10**12), width=st.integers(1, 256))
def test_tile_paths_are_spelled_as_the_spec_says_and_read_back(
    level: int, index: int, width: int
) -> None:
    path = path_of(level, index, width)
    assert "/" + tile_path(level, index, width) == path
    _, _, number, rest = path.split("/", 3)
    assert parse_level(number) == level
    assert parse_index(rest) == (index, width)


@pytest.mark.parametrize(
    "bad",
    [
        *("1", "0001", "x000/001", "x01/001", "001/001", "000.p/0", "000.p/256", "000.p/01"),
        *("000.p/", "00a", "x001", "000/", "x1234/567", "\u0660\u0660\u0661"),
    ],
)
def test_other_spellings_of_a_tile_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_index(bad)


def _vector_cases() -> list[dict]:  # type: ignore[type-arg]
    assert VECTORS.is_dir(), f"RFC 9162 vectors not found at {VECTORS}"
    return [json.loads(p.read_text()) for p in sorted(VECTORS.rglob("*.json"))]


def _b64(items: list[str] | None) -> list[bytes]:
    return [base64.b64decode(i) for i in items or []]


def _of_rfc6962_leaves(case: dict) -> bool:  # type: ignore[type-arg]
    """An inclusion case about RFC 6962's leaves (others are made of other leaves)."""
    index = case["leafIdx"]
    leaf = RFC6962_LEAVES[index] if 0 <= index < len(RFC6962_LEAVES) else None
    return leaf is not None and base64.b64decode(case["leafHash"]) == reference_merkle.mth([leaf])


@pytest.mark.parametrize("full", [2, 4, 256])
def test_tiles_of_rfc_6962s_leaves_reproduce_the_vectors(full: int) -> None:
    cases = _vector_cases()
    checked = refused = 0
    for case in cases:
        if "size1" in case:
            size1, size2 = case["size1"], case["size2"]
            root1, root2 = base64.b64decode(case["root1"]), base64.b64decode(case["root2"])
            proof = _b64(case["proof"])
            if case["wantErr"]:
                refused += 1
                assert not consistent(size1, size2, root1, root2, proof), case["desc"]
                continue
            tree = tree_of(RFC6962_LEAVES[:size2], full)
            assert tree.proof(size1) == proof, case["desc"]
            if len(root1) == len(root2) == 32:  # some cases' roots are placeholders
                assert tree.root() == root2
                assert tree_of(RFC6962_LEAVES[:size1], full).root() == root1
                assert consistent(size1, size2, root1, root2, tree.proof(size1))
        elif not case["wantErr"] and _of_rfc6962_leaves(case):
            tree = tree_of(RFC6962_LEAVES[: case["treeSize"]], full)
            assert tree.root() == base64.b64decode(case["root"])
            assert tree.path(case["leafIdx"]) == _b64(case["proof"])
        checked += 1
    assert checked >= 8 and refused >= 50, (checked, refused)
