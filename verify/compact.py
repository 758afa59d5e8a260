"""A compact range: the perfect-subtree roots covering leaves [0, size) of an RFC 9162 tree.

It is all that is needed to extend the tree by one leaf and to compute its root, so roots at
growing sizes cost only the new leaves.
"""

from __future__ import annotations

import hashlib

_EMPTY_ROOT = hashlib.sha256(b"").digest()


class CompactRange:
    def __init__(self) -> None:
        self.size = 0
        self._nodes: list[tuple[int, bytes]] = []  # (leaf count, hash), largest first

    def append(self, leaf_hash: bytes) -> None:
        count = 1
        nodes = self._nodes
        while nodes and nodes[-1][0] == count:
            leaf_hash = hashlib.sha256(b"\x01" + nodes.pop()[1] + leaf_hash).digest()
            count *= 2
        nodes.append((count, leaf_hash))
        self.size += 1

    def root(self) -> bytes:
        """RFC 9162 MTH of the leaves so far: fold the subtrees from the right."""
        if not self._nodes:
            return _EMPTY_ROOT
        acc = self._nodes[-1][1]
        for _, left in reversed(self._nodes[:-1]):
            acc = hashlib.sha256(b"\x01" + left + acc).digest()
        return acc
