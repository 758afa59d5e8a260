"""Reading the global Merkle log: sizes, roots, subject heads and proofs (§6, §7)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from events.db import Cursor
from events.per_store import PerDatastore
from verify.chain import CompletenessProof, ProvenLeaf
from verify.compact import CompactRange, HeadsTree, TreeLevels
from verify.merkle import inclusion_proof_from_hashes, leaf_hash, root_from_leaf_hashes
from verify.records import Link, head_bytes, parse_leaf

BATCH = 10_000


class LeafFeed:
    """Leaves this process has committed, so the checkpointer need not read them back and parse
    them again. Only ever a contiguous run of positions; anything else is read from the store.

    Fed only after a commit, with the very bytes that were committed.
    """

    LIMIT = 100_000  # leaves kept when nobody takes them (no checkpointer on this store)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._start = 0
        self._leaves: list[tuple[bytes, list[Link]]] = []

    def add(self, start: int, leaves: list[tuple[bytes, list[Link]]]) -> None:
        with self._lock:
            end = self._start + len(self._leaves)
            # Another writer's leaves in between, or commits reported out of order: the run
            # restarts here and the checkpointer reads what it lacks.
            if start != end or len(self._leaves) > self.LIMIT:
                self._start, self._leaves = start, []
            self._leaves.extend(leaves)

    def take(self, start: int, stop: int) -> list[tuple[bytes, list[Link]]]:
        """The leaves from ``start`` on, up to ``stop``, that are here without a gap (none if
        ``start`` is not), dropping those below ``stop``. A checkpoint signed inside an append's
        transaction finds all but that transaction's own leaves here."""
        with self._lock:
            end = self._start + len(self._leaves)
            found = []
            if self._start <= start < end:
                found = self._leaves[start - self._start : min(stop, end) - self._start]
            keep = max(0, min(stop, end) - self._start)
            self._start, self._leaves = self._start + keep, self._leaves[keep:]
            return found


# The one feed of a datastore, shared by its recorder (which adds) and checkpointer.
leaf_feed: PerDatastore[LeafFeed] = PerDatastore(lambda _datastore: LeafFeed())


def tree_size(cursor: Cursor) -> int:
    cursor.execute("SELECT MAX(position) FROM ledger_leaves")
    row = cursor.fetchone()
    return 0 if row is None or row[0] is None else row[0] + 1


def iter_leaves(cursor: Cursor, start: int, stop: int) -> Iterator[bytes]:
    """Leaf bytes for positions [start, stop), in batches to bound memory."""
    while start < stop:
        end = min(stop, start + BATCH)
        cursor.execute(
            "SELECT leaf FROM ledger_leaves WHERE position >= ? AND position < ? ORDER BY position",
            (start, end),
        )
        for (leaf,) in cursor.fetchall():
            yield bytes(leaf)
        start = end


def subject_heads(cursor: Cursor, size: int) -> list[tuple[str, int, int]]:
    """Every subject's [subject, seq, position] below ``size``, sorted by UTF-8 bytes."""
    cursor.execute(
        "SELECT subject, MAX(seq), MAX(position) FROM ledger_links WHERE position < ? "
        "GROUP BY subject",
        (size,),
    )
    heads = [(s, seq, pos) for s, seq, pos in cursor.fetchall()]
    heads.sort(key=lambda h: h[0].encode())
    return heads


def subject_heads_root(heads: list[tuple[str, int, int]]) -> bytes:
    return root_from_leaf_hashes([leaf_hash(head_bytes(*h)) for h in heads])


class LogState:
    """The log's root and subject-heads root at growing sizes.

    Each call reads only the leaves added since the last one: the compact range extends the
    tree, and each leaf's own links advance the subjects' heads.
    """

    def __init__(self, feed: LeafFeed | None = None) -> None:
        self._lock = threading.Lock()
        self._feed = feed
        self._reset()

    def forget(self) -> None:
        """Start over at the next call (the leaves read last may have been rolled back)."""
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self._range = CompactRange()
        self._heads: dict[str, tuple[int, int]] = {}
        self._tree = HeadsTree()

    def roots_at(self, cursor: Cursor, size: int) -> tuple[bytes, bytes]:
        """(root, subject-heads root) of the first ``size`` leaves."""
        with self._lock:
            if size < self._range.size:  # an older size: start over (rare)
                self._reset()
            position = self._range.size
            changed = {}
            fed = [] if self._feed is None else self._feed.take(position, size)
            for leaf, links in fed:
                self._range.append(leaf_hash(leaf))
                for subject, seq, _ in links:
                    changed[subject] = (seq, position)
                position += 1
            for leaf in iter_leaves(cursor, position, size):
                self._range.append(leaf_hash(leaf))
                for subject, seq, _ in parse_leaf(leaf).links:
                    changed[subject] = (seq, position)
                position += 1
            for subject, (seq, last) in changed.items():
                self._tree.set(subject, leaf_hash(head_bytes(subject, seq, last)))
            return self._range.root(), self._tree.root()


def leaf_hashes(cursor: Cursor, size: int) -> list[bytes]:
    return [leaf_hash(leaf) for leaf in iter_leaves(cursor, 0, size)]


def inclusion_proof(cursor: Cursor, position: int, size: int) -> list[bytes]:
    return inclusion_proof_from_hashes(position, leaf_hashes(cursor, size))


def completeness_proof(cursor: Cursor, subject: str, size: int) -> CompletenessProof:
    """Every leaf of ``subject`` below ``size``, each with its inclusion proof, plus the subject's
    head and its proof in the subject-heads tree at ``size`` (§7)."""
    heads = subject_heads(cursor, size)
    index = next((i for i, h in enumerate(heads) if h[0] == subject), None)
    if index is None:
        raise LookupError(f"{subject} has no events below size {size}")
    _, seq, last = heads[index]
    head_hashes = [leaf_hash(head_bytes(*h)) for h in heads]
    cursor.execute(
        "SELECT position FROM ledger_links WHERE subject = ? AND position < ? ORDER BY seq",
        (subject, size),
    )
    positions = [row[0] for row in cursor.fetchall()]
    tree = TreeLevels(leaf_hashes(cursor, size))
    leaves = []
    for position in positions:
        leaf = next(iter_leaves(cursor, position, position + 1))
        leaves.append(ProvenLeaf(position, leaf, tree.inclusion_proof(position)))
    return CompletenessProof(
        subject=subject,
        seq=seq,
        last_position=last,
        head_index=index,
        heads_size=len(heads),
        head_proof=inclusion_proof_from_hashes(index, head_hashes),
        leaves=leaves,
    )
