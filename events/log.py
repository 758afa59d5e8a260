"""Reading the global Merkle log: sizes, roots, subject heads and proofs (§6, §7)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from events import heads as stored_heads
from events import tiles
from events.db import Cursor
from events.per_store import PerDatastore
from events.tiles import tree_size as tree_size  # its callers import it from here
from verify.chain import CompletenessProof, ProvenLeaf
from verify.checkpoint import parse_note, verify_checkpoint
from verify.compact import CompactRange, HeadsTree
from verify.hashing import short
from verify.keyhistory import key_for_size, parse_statement
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


def iter_leaves(cursor: Cursor, start: int, stop: int) -> Iterator[bytes]:
    """Leaf bytes for positions [start, stop), in batches to bound memory."""
    while start < stop:
        end = min(stop, start + BATCH)
        # The LIMIT is what the range holds at most: without it PostgreSQL estimates a range
        # of positions at 0.5% of the table whatever its width, and at 10M events read one
        # leaf through a parallel bitmap scan (45 ms) instead of the primary key (0.4 ms).
        cursor.execute(
            "SELECT leaf FROM ledger_leaves WHERE position >= ? AND position < ? "
            "ORDER BY position LIMIT ?",
            (start, end, end - start),
        )
        for (leaf,) in cursor.fetchall():
            yield bytes(leaf)
        start = end


# Each subject's head at a size from the links alone, for a store whose ledger_heads is not
# filled yet (opened before the writer filled it): the subjects are walked with one index seek
# each (a "loose index scan" of ledger_links_main's primary key), and each subject's last link
# below the size is read from the end of its links. Links still waiting in ledger_links_recent
# and ledger_links_mid (SQLite) are newer than any in main and are read in one scan of them.
HEADS_IN_MAIN = (
    "WITH RECURSIVE s(subject) AS ("
    "SELECT MIN(subject) FROM ledger_links_main UNION ALL "
    "SELECT (SELECT MIN(m.subject) FROM ledger_links_main m WHERE m.subject > s.subject) "
    "FROM s WHERE s.subject IS NOT NULL) "
    "SELECT s.subject, "
    "(SELECT m.seq FROM ledger_links_main m WHERE m.subject = s.subject AND m.position < ? "
    "ORDER BY m.seq DESC LIMIT 1), "
    "(SELECT m.position FROM ledger_links_main m WHERE m.subject = s.subject AND m.position < ? "
    "ORDER BY m.seq DESC LIMIT 1) "
    "FROM s WHERE s.subject IS NOT NULL"
)
HEADS_IN_RECENT = (
    "SELECT subject, MAX(seq), MAX(position) FROM (SELECT subject, seq, position FROM "
    "ledger_links_recent UNION ALL SELECT subject, seq, position FROM ledger_links_mid) r "
    "WHERE position < ? GROUP BY subject"
)


def head_rows_at(cursor: Cursor, size: int) -> list[stored_heads.HeadRow]:
    """Every subject's (subject, seq, position, leaf hash) below ``size``, sorted by UTF-8
    bytes: from ledger_heads (events/heads.py), or from the links if it is not filled yet."""
    rows = stored_heads.stored_heads(cursor)
    if rows or size == 0 or not stored_heads.has_settled_links(cursor):
        return stored_heads.heads_at(cursor, size, rows)
    cursor.execute(HEADS_IN_MAIN, (size, size))
    found = {s: (seq, pos) for s, seq, pos in cursor.fetchall() if seq is not None}
    cursor.execute(HEADS_IN_RECENT, (size,))
    for subject, seq, position in cursor.fetchall():
        found[subject] = (seq, position)  # a subject's recent links follow its links in main
    heads = [stored_heads.head_row(s, seq, pos) for s, (seq, pos) in found.items()]
    heads.sort(key=lambda h: h[0].encode())
    return heads


def subject_heads(cursor: Cursor, size: int) -> list[tuple[str, int, int]]:
    """Every subject's [subject, seq, position] below ``size``, sorted by UTF-8 bytes."""
    return [(s, seq, pos) for s, seq, pos, _ in head_rows_at(cursor, size)]


def subject_heads_root(heads: list[tuple[str, int, int]]) -> bytes:
    return root_from_leaf_hashes([leaf_hash(head_bytes(*h)) for h in heads])


class LogState:
    """The log's root and subject-heads root at growing sizes.

    Each call reads only the leaves added since the last one: the compact range extends the
    tree, and each leaf's own links advance the subjects' heads. A fresh state (a new process)
    starts from the newest checkpoint at or below the size asked for: its compact range is read
    from the stored tiles (a few hashes per level) and its heads tree's leaves from ledger_heads
    (one row per subject, events/heads.py), and both must
    reproduce that checkpoint's signed roots; the leaves after it are read and hashed. The root
    so computed from leaves is then compared with the stored tiles' root at the size, so no
    checkpoint is signed over tiles that disagree with the leaves (TileMismatch).
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
        self._tree = HeadsTree()

    def roots_at(self, cursor: Cursor, size: int) -> tuple[bytes, bytes]:
        """(root, subject-heads root) of the first ``size`` leaves."""
        with self._lock:
            if size < self._range.size:  # an older size: start over (rare)
                self._reset()
            if self._range.size == 0:
                self._seed(cursor, size)
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
            root = self._range.root()
            stored = tiles.root_at(cursor, size)
            if stored != root:
                raise tiles.TileMismatch(
                    f"the stored tiles give root {short(stored)} at size {size}, "
                    f"the leaves {short(root)}"
                )
            return root, self._tree.root()

    def _seed(self, cursor: Cursor, size: int) -> None:
        """Start at the newest checkpoint at or below ``size``, from the stored tiles."""
        cursor.execute(
            "SELECT note FROM ledger_checkpoints WHERE size <= ? ORDER BY size DESC LIMIT 1",
            (size,),
        )
        row = cursor.fetchone()
        if row is None:
            return
        checkpoint = parse_note(bytes(row[0]))
        if checkpoint.size == 0:
            return
        # Signed by the key in force at its size, or it vouches for nothing.
        cursor.execute("SELECT statement FROM ledger_keys ORDER BY seq")
        history = [parse_statement(bytes(r[0])) for r in cursor.fetchall()]
        verify_checkpoint(checkpoint, key_for_size(history, checkpoint.size).public_key)
        seeded = CompactRange()
        seeded.extend(tiles.TileReader(cursor).nodes(0, checkpoint.size))
        if seeded.root() != checkpoint.root:
            raise tiles.TileMismatch(
                f"the stored tiles give root {short(seeded.root())} at size {checkpoint.size}, "
                f"its checkpoint signs {short(checkpoint.root)}"
            )
        # The heads tree's leaves as stored (events/heads.py): trusted only because the root
        # they give is the one the checkpoint signs.
        tree = HeadsTree()
        tree.update({s: h for s, _, _, h in head_rows_at(cursor, checkpoint.size)})
        if tree.root() != checkpoint.subjects_root:
            raise tiles.TileMismatch(
                f"the links give subject-heads root {short(tree.root())} at size "
                f"{checkpoint.size}, its checkpoint signs {short(checkpoint.subjects_root)}"
            )
        self._range, self._tree = seeded, tree


def leaf_hashes(cursor: Cursor, size: int) -> list[bytes]:
    return [leaf_hash(leaf) for leaf in iter_leaves(cursor, 0, size)]


def inclusion_proof(cursor: Cursor, position: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(position, D[size]), from the stored tiles: O(log size) hashes read."""
    return tiles.inclusion_proof(tiles.TileReader(cursor), position, size)


def completeness_proof(cursor: Cursor, subject: str, size: int) -> CompletenessProof:
    """Every leaf of ``subject`` below ``size``, each with its inclusion proof, plus the subject's
    head and its proof in the subject-heads tree at ``size`` (§7).

    The inclusion proofs come from the stored tiles (one reader, so a tile shared by several
    proofs is read once): O(k log n) for a subject with k leaves. The heads tree is built from
    every subject's stored head hash (ledger_heads: O(subjects) rows read, no leaf). A proof
    built from a damaged tile or head does not reproduce the checkpoint's roots, so the
    reader's check fails."""
    heads = head_rows_at(cursor, size)
    index = next((i for i, h in enumerate(heads) if h[0] == subject), None)
    if index is None:
        raise LookupError(f"{subject} has no events below size {size}")
    _, seq, last, _ = heads[index]
    head_hashes = [h[3] for h in heads]
    cursor.execute(
        "SELECT position FROM ledger_links WHERE subject = ? AND position < ? ORDER BY seq",
        (subject, size),
    )
    positions = [row[0] for row in cursor.fetchall()]
    reader = tiles.TileReader(cursor)
    leaves = []
    for position in positions:
        leaf = next(iter_leaves(cursor, position, position + 1))
        leaves.append(ProvenLeaf(position, leaf, tiles.inclusion_proof(reader, position, size)))
    return CompletenessProof(
        subject=subject,
        seq=seq,
        last_position=last,
        head_index=index,
        heads_size=len(heads),
        head_proof=inclusion_proof_from_hashes(index, head_hashes),
        leaves=leaves,
    )
