"""STAND-IN until branch tiles-store is merged: tile hashes computed from the leaves.

Same signature as tiles-store's events/tiles.py; replaced by it on merge (never two).
"""

from __future__ import annotations

from events.db import Cursor
from events.log import iter_leaves, tree_size
from verify.merkle import leaf_hash, root_from_leaf_hashes

__all__ = ["read_tile", "tree_size"]
WIDTH = 256


def read_tile(cursor: Cursor, level: int, index: int, width: int = WIDTH) -> list[bytes]:
    span = WIDTH**level  # leaves under one hash of this level
    start = index * WIDTH * span
    hashes = [leaf_hash(leaf) for leaf in iter_leaves(cursor, start, start + width * span)]
    return [root_from_leaf_hashes(hashes[i * span : (i + 1) * span]) for i in range(width)]
