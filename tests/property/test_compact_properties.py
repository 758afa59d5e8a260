"""The incremental tree structures must give exactly the roots of a from-scratch computation."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from verify.compact import CompactRange, HeadsTree, TreeLevels
from verify.merkle import inclusion_proof_from_hashes, leaf_hash, root_from_leaf_hashes


def mth(data: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 MTH, recursively, straight from the definition."""
    if not data:
        return hashlib.sha256(b"").digest()
    if len(data) == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < len(data):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def _leaves(n: int, seed: int) -> list[bytes]:
    return [hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in range(n)]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 600), st.integers(0, 10**6))
def test_compact_range_root_equals_the_rfc_root_at_every_size(n: int, seed: int) -> None:
    data = _leaves(n, seed)
    compact = CompactRange()
    assert compact.root() == mth([])
    for i, item in enumerate(data):
        compact.append(leaf_hash(item))
        if i % 37 == 0 or i == n - 1:
            assert compact.root() == mth(data[: i + 1])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 2000), st.sampled_from([1, 2, 4, 8, 16, 64, 256]), st.integers(0, 10**6))
def test_extending_by_aligned_ranges_equals_appending_every_leaf(
    n: int, chunk: int, seed: int
) -> None:
    hashes = [leaf_hash(x) for x in _leaves(n, seed)]
    whole = CompactRange()
    for h in hashes:
        whole.append(h)
    stitched = CompactRange()
    for start in range(0, n, chunk):
        part = CompactRange()
        for h in hashes[start : start + chunk]:
            part.append(h)
        stitched.extend(part.nodes())
    assert stitched.size == n
    assert stitched.root() == whole.root() == root_from_leaf_hashes(hashes)


subjects = st.sampled_from(
    [f"patient:{i}" for i in range(40)]
    + [f"user:{i}" for i in range(9)]
    + ["user:\u00e9", "user:z", "user:\uffff", "user:\U00010000"]  # UTF-8 order is code point order
)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.lists(st.tuples(subjects, st.binary(min_size=32, max_size=32)), max_size=12)),
    st.booleans(),
)
def test_heads_tree_root_equals_recomputing_over_sorted_subjects(
    rounds: list[list[tuple[str, bytes]]], at_once: bool
) -> None:
    tree = HeadsTree()
    current: dict[str, bytes] = {}
    assert tree.root() == root_from_leaf_hashes([])
    for updates in rounds:
        if at_once:
            tree.update(dict(updates))
        for subject, value in updates:
            if not at_once:
                tree.set(subject, value)
            current[subject] = value
        ordered = sorted(current, key=str.encode)
        assert tree.root() == root_from_leaf_hashes([current[s] for s in ordered])


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 700), st.integers(0, 10**6), st.data())
def test_proofs_from_prebuilt_levels_equal_the_rfc_paths(
    n: int, seed: int, data: st.DataObject
) -> None:
    hashes = [leaf_hash(x) for x in _leaves(n, seed)]
    tree = TreeLevels(hashes)
    for index in data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=8)):
        assert tree.inclusion_proof(index) == inclusion_proof_from_hashes(index, hashes)
