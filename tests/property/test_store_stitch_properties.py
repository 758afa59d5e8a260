"""The rules by which the store check compares what the ranges found with the stored tables.

The links index is compared range by range through ``links_digest`` (the same digest exactly
when the same multiset of links), and the stored tiles are recomputed by the ranges at level 0,
with the level above stitched from the roots of their full tiles: both must give exactly what
one pass over the whole log gives.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from verify.ranges import _levels, links_digest
from verify.tiles import TILE_HEIGHT, TILE_WIDTH, TileStream

links = st.lists(
    st.tuples(
        st.integers(0, 50), st.sampled_from(["patient:a", "patient:b", "user:c"]), st.integers(1, 5)
    ),
    max_size=12,
)


@given(links, links)
@settings(max_examples=150, deadline=None)
def test_two_lists_of_links_have_one_digest_exactly_when_they_are_one_multiset(
    a: list[tuple[int, str, int]], b: list[tuple[int, str, int]]
) -> None:
    assert (links_digest(list(a)) == links_digest(list(b))) == (Counter(a) == Counter(b))


@given(links, st.randoms(use_true_random=False))
@settings(max_examples=100, deadline=None)
def test_the_order_links_are_read_in_does_not_change_the_digest(
    a: list[tuple[int, str, int]], random: object
) -> None:
    shuffled = list(a)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert links_digest(shuffled) == links_digest(list(a))


def test_a_value_of_another_type_gives_no_links_digest_at_all() -> None:
    assert links_digest([(1, "patient:a", 1), (None, "patient:a", 1)]) == b""
    assert links_digest([(1, b"patient:a", 1)]) != links_digest([(1, "patient:a", 1)])


def _tiles_in_one_pass(hashes: list[bytes]) -> list[tuple[int, int, bytes]]:
    tiles: list[tuple[int, int, bytes]] = []
    stream = TileStream(lambda *tile: tiles.append(tile))
    for h in hashes:
        stream.add(h)
    stream.finish()
    return sorted(tiles)


@given(st.integers(0, 5 * TILE_WIDTH + 7), st.lists(st.integers(1, 3), max_size=6))
@settings(max_examples=40, deadline=None)
def test_tiles_stitched_from_aligned_ranges_are_the_tiles_of_the_whole_log(
    size: int, cuts: list[int]
) -> None:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    # ranges that start at multiples of TILE_WIDTH, as verify.store cuts the log
    edges = sorted({0, size, *(min(size, c * TILE_WIDTH) for c in cuts)})
    tiles: list[tuple[int, int, bytes]] = []
    above = TileStream(lambda *tile: tiles.append(tile), level=1)
    for start, stop in itertools.pairwise(edges):
        chunk = hashes[start:stop]
        for i in range(0, len(chunk), TILE_WIDTH):
            tiles.append((0, (start + i) // TILE_WIDTH, b"".join(chunk[i : i + TILE_WIDTH])))
        levels = _levels(chunk)
        for root in levels[TILE_HEIGHT] if len(levels) > TILE_HEIGHT else []:
            above.add(root)
    above.finish()
    assert sorted(tiles) == _tiles_in_one_pass(hashes)
