"""Recomputing the stored tiles of the log from its leaves (docs/LEDGER_FORMAT.md §12).

C2SP tlog-tiles: a tile holds up to 256 consecutive hashes of one level; level 0 holds the leaf
hashes in log order, and entry N of level L+1 is the RFC 9162 root of the full tile N of level
L. ``TileStream`` takes leaf hashes in order and hands out each tile once it is final (full
tiles as they fill, the partial tiles at the end), holding at most 255 hashes per level: its
memory does not grow with the log.
"""

from __future__ import annotations

from collections.abc import Callable

from verify.merkle import root_from_leaf_hashes

TILE_WIDTH = 256
HASH_SIZE = 32

# Called with (level, index, concatenated hashes) of each tile as it is final.
TileSink = Callable[[int, int, bytes], None]


class TileStream:
    def __init__(self, sink: TileSink) -> None:
        self._sink = sink
        self._pending: list[list[bytes]] = []  # per level, the entries of its unfinished tile
        self._done: list[int] = []  # per level, how many full tiles it has

    def add(self, leaf_hash: bytes) -> None:
        self._push(0, leaf_hash)

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
            self._sink(level, index, b"".join(pending))
            self._push(level + 1, root_from_leaf_hashes(pending))

    def finish(self) -> dict[int, int]:
        """Hand out the partial tiles; return how many tiles each level has in all."""
        counts = {}
        for level, pending in enumerate(self._pending):
            if pending:
                self._sink(level, self._done[level], b"".join(pending))
            counts[level] = self._done[level] + (1 if pending else 0)
        return {level: n for level, n in counts.items() if n}


def first_difference(stored: bytes, expected: bytes) -> int:
    """The index of the first hash in which two tiles differ (or where one ends)."""
    for i in range(0, min(len(stored), len(expected)), HASH_SIZE):
        if stored[i : i + HASH_SIZE] != expected[i : i + HASH_SIZE]:
            return i // HASH_SIZE
    return min(len(stored), len(expected)) // HASH_SIZE
