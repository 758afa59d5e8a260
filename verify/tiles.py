"""Recomputing the stored tiles of the log from its leaves (docs/LEDGER_FORMAT.md §12).

C2SP tlog-tiles: a tile holds up to 256 consecutive hashes of one level; level 0 holds the leaf
hashes in log order, and entry N of level L+1 is the RFC 9162 root of the full tile N of level
L. ``TileStream`` takes leaf hashes in order and hands out each tile once it is final (full
tiles as they fill, the partial tiles at the end), holding at most 255 hashes per level: its
memory does not grow with the log.
"""

from __future__ import annotations

from collections.abc import Callable

from verify.errors import ChainBroken, ProofInvalid, VerificationError
from verify.hashing import short
from verify.merkle import root_from_leaf_hashes

TILE_WIDTH = 256
TILE_HEIGHT = 8  # levels of the tree one tile spans: TILE_WIDTH == 2**TILE_HEIGHT
HASH_SIZE = 32

# Called with (level, index, concatenated hashes) of each tile as it is final.
TileSink = Callable[[int, int, bytes], None]


class TileStream:
    """Entries of one level in order (leaf hashes for level 0, the default); the tiles of that
    level and every level above it come out of ``sink``."""

    def __init__(self, sink: TileSink, level: int = 0) -> None:
        self._sink = sink
        self._level = level
        # per level from ``level`` up, the entries of its unfinished tile, its full tiles
        self._pending: list[list[bytes]] = []
        self._done: list[int] = []

    def add(self, entry: bytes) -> None:
        self._push(0, entry)

    def _push(self, level: int, entry: bytes) -> None:
        if len(self._pending) <= level:
            self._pending.append([])
            self._done.append(0)
        pending = self._pending[level]
        pending.append(entry)
        if len(pending) == TILE_WIDTH:
            index = self._done[level]
            self._done[level] += 1
            self._pending[level] = []
            self._sink(self._level + level, index, b"".join(pending))
            self._push(level + 1, root_from_leaf_hashes(pending))

    def finish(self) -> dict[int, int]:
        """Hand out the partial tiles; return how many tiles each level has in all."""
        counts = {}
        for level, pending in enumerate(self._pending):
            if pending:
                self._sink(self._level + level, self._done[level], b"".join(pending))
            counts[self._level + level] = self._done[level] + (1 if pending else 0)
        return {level: n for level, n in counts.items() if n}


def tile_problem(
    level: int, index: int, found: bytes | None, expected: bytes
) -> tuple[str, VerificationError] | None:
    """(where, error) naming a stored tile that is not the one the leaves give, and the first
    hash in it that differs (with its index in the level); None when they agree."""
    where = f"tile {level}/{index}"
    if found is None:
        return where, ChainBroken("missing from ledger_tiles")
    if found == expected:
        return None
    i = first_difference(found, expected)
    return where, ProofInvalid(
        f"hash {i} (level {level}, index {index * TILE_WIDTH + i}) is "
        f"{short(found[i * 32 : i * 32 + 32] or None)}, the leaves give "
        f"{short(expected[i * 32 : i * 32 + 32] or None)}"
        + (
            f"; it holds {len(found) // 32} hashes, not {len(expected) // 32}"
            if len(found) != len(expected)
            else ""
        )
    )


def first_difference(stored: bytes, expected: bytes) -> int:
    """The index of the first hash in which two tiles differ (or where one ends)."""
    for i in range(0, min(len(stored), len(expected)), HASH_SIZE):
        if stored[i : i + HASH_SIZE] != expected[i : i + HASH_SIZE]:
            return i // HASH_SIZE
    return min(len(stored), len(expected)) // HASH_SIZE
