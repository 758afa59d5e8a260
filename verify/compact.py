"""A compact range: the perfect-subtree roots covering leaves [0, size) of an RFC 9162 tree.

It is all that is needed to extend the tree by one leaf and to compute its root, so roots at
growing sizes cost only the new leaves.
"""

from __future__ import annotations

import hashlib

_EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256


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

    def nodes(self) -> list[tuple[int, bytes]]:
        return list(self._nodes)

    def extend(self, nodes: list[tuple[int, bytes]]) -> None:
        """Append another range's subtrees. Sound when that range starts at a multiple of a
        power of two at least as large as itself, so each subtree is aligned in the whole tree."""
        for count, hash_ in nodes:
            while self._nodes and self._nodes[-1][0] == count:
                hash_ = hashlib.sha256(b"\x01" + self._nodes.pop()[1] + hash_).digest()
                count *= 2
            self._nodes.append((count, hash_))
        self.size += sum(count for count, _ in nodes)

    def copy(self) -> CompactRange:
        twin = CompactRange()
        twin.size, twin._nodes = self.size, list(self._nodes)
        return twin

    def root(self) -> bytes:
        """RFC 9162 MTH of the leaves so far: fold the subtrees from the right."""
        if not self._nodes:
            return _EMPTY_ROOT
        acc = self._nodes[-1][1]
        for _, left in reversed(self._nodes[:-1]):
            acc = hashlib.sha256(b"\x01" + left + acc).digest()
        return acc


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class HeadsTree:
    """The subject-heads tree (§7) kept between checkpoints: a changed head rehashes one path.

    Subjects are leaves in UTF-8 order; a new subject shifts the order, so it triggers a rebuild
    (rare once a practice has its patients). Levels follow RFC 9162: an odd last node is
    promoted unchanged, which gives the same root as the split rule.
    """

    def __init__(self) -> None:
        self._hashes: dict[str, bytes] = {}
        self._index: dict[str, int] = {}
        self._levels: list[list[bytes]] = []
        self._dirty: set[str] = set()
        self._reshaped = True

    def set(self, subject: str, leaf_hash: bytes) -> None:
        known = self._hashes.get(subject)
        if known == leaf_hash:
            return
        if known is None:
            self._reshaped = True
        else:
            self._dirty.add(subject)
        self._hashes[subject] = leaf_hash

    def update(self, leaf_hashes: dict[str, bytes]) -> None:
        """``set`` for every subject and leaf hash given, in one step."""
        hashes = self._hashes
        if not self._reshaped:
            if leaf_hashes.keys() <= hashes.keys():
                self._dirty.update(leaf_hashes)
            else:
                self._reshaped = True
        hashes.update(leaf_hashes)

    def root(self) -> bytes:
        if self._reshaped:
            self._rebuild()
        elif self._dirty:
            self._update()
        if not self._levels or not self._levels[0]:
            return _EMPTY_ROOT
        return self._levels[-1][0]

    def _rebuild(self) -> None:
        # Code point order is UTF-8 byte order for any text that has a UTF-8 encoding. The new
        # subjects are sorted on their own and merged in (one pass over two sorted runs).
        order = [*self._index, *sorted(self._hashes.keys() - self._index.keys())]
        order.sort()
        self._index = dict(zip(order, range(len(order)), strict=True))
        level = list(map(self._hashes.__getitem__, order))
        self._levels = [level]
        while len(level) > 1:
            pairs = iter(level)
            upper = [_sha256(b"\x01" + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
            if len(level) % 2:
                upper.append(level[-1])
            level = upper
            self._levels.append(level)
        self._dirty.clear()
        self._reshaped = False

    def _update(self) -> None:
        # Called once per checkpoint with ~a checkpoint's worth of changed heads: rehash each
        # changed node once, level by level, rather than each changed leaf's whole path.
        levels, hashes, index = self._levels, self._hashes, self._index
        bottom = levels[0]
        changed = set()
        for subject in self._dirty:
            i = index[subject]
            bottom[i] = hashes[subject]
            changed.add(i >> 1)
        sha = _sha256
        for depth in range(1, len(levels)):
            below, here = levels[depth - 1], levels[depth]
            last = len(below) - 1
            for j in changed:
                left = 2 * j
                here[j] = (
                    sha(b"\x01" + below[left] + below[left + 1]).digest()
                    if left < last
                    else below[left]
                )
            changed = {j >> 1 for j in changed}
        self._dirty.clear()


class TreeLevels:
    """Every level of an RFC 9162 tree, built once, so many inclusion proofs cost a walk each.

    With an odd last node promoted unchanged, a leaf's audit path is its sibling at each level
    where it has one: the same path as RFC 9162 §2.1.3.1 PATH.
    """

    def __init__(self, leaf_hashes: list[bytes]) -> None:
        level = list(leaf_hashes)
        self.levels = [level]
        while len(level) > 1:
            pairs = [_node(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                pairs.append(level[-1])
            level = pairs
            self.levels.append(level)

    def inclusion_proof(self, index: int) -> list[bytes]:
        if not 0 <= index < len(self.levels[0]):
            raise ValueError(f"index {index} is outside tree of size {len(self.levels[0])}")
        proof = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index //= 2
        return proof
