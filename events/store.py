"""Append events and their leaves in one transaction under the writer lock (§5).

Called by both recorders with the lock already held: the next position is one past the last
leaf, and each subject's previous leaf comes from ``ledger_links``. Leaves are inserted before
the events, so the trigger that refuses an event without its leaf can see them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from events.db import Cursor
from events.encoding import LedgerStoredEvent
from verify.records import Link, leaf_bytes

# Work that must commit or fail together with the events (e.g. a key statement), given
# the cursor and the positions the events received.
AfterAppend = Callable[[Cursor, list[int]], None]
HEADS_CHUNK = 500  # well under SQLite's limit on bound parameters


class NotALedgerEvent(TypeError):
    """A stored event that did not come through the ledger's mapper."""


class StaleDataKey(LookupError):
    """An event was sealed under a cached data key that has since been disposed of."""

    def __init__(self, names: set[str]) -> None:
        super().__init__("a data key was disposed of while the append was prepared")
        self.names = names


class HeadCache:
    """Subjects' (seq, position) as of the tip this writer last committed.

    Valid only while the log's tip is still that tip: if any other writer appended since, the
    cache is dropped and heads are read from ``ledger_links``. Updated only after a commit, so a
    rolled-back append can never leave it ahead of the store.
    """

    MAX_SUBJECTS = 200_000  # bounds memory; past it the cache starts over

    def __init__(self) -> None:
        self.tip: int | None = None  # the next position, as of our last commit
        self.heads: dict[str, tuple[int, int]] = {}
        # Threads sharing one ledger call commit_to after their commits, in any order.
        self.lock = threading.Lock()

    def lookup(self, tip: int, subjects: set[str]) -> dict[str, tuple[int, int]]:
        """The cached heads of ``subjects``, if the cache describes the log up to ``tip``."""
        with self.lock:
            if self.tip != tip:
                self.tip, self.heads = None, {}  # another writer appended: start over
                return {}
            return {s: self.heads[s] for s in subjects if s in self.heads}


class Appended:
    """What one append produced, for the recorder to apply once the transaction commits."""

    def __init__(self, start: int, positions: list[int], heads: dict[str, tuple[int, int]]) -> None:
        self.start = start
        self.positions = positions
        self.heads = heads


def append_leaves(
    cursor: Cursor,
    events: Sequence[Any],
    stream_column: Callable[[Any], Any],
    cache: HeadCache,
) -> Appended:
    """Insert the leaves and links of ``events``; after the commit, call ``commit_to``."""
    for event in events:
        if not isinstance(event, LedgerStoredEvent) or len(event.digest) != 32:
            raise NotALedgerEvent("only events encoded by LedgerMapper can be appended")
    # One round trip: the next position, and whether every data key used is still there
    # (disposal deletes keys under the same writer lock, so none can vanish after this).
    names = sorted({event.key_name for event in events})
    marks = ", ".join("?" * len(names))
    cursor.execute(
        "SELECT (SELECT MAX(position) FROM ledger_leaves), "
        f"(SELECT COUNT(*) FROM ledger_data_keys WHERE name IN ({marks}))",
        names,
    )
    row = cursor.fetchone()
    assert row is not None
    if row[1] != len(names):
        raise StaleDataKey(set(names))
    position = start = 0 if row[0] is None else row[0] + 1
    subjects = {s for event in events for s in event.subjects}
    heads = cache.lookup(position, subjects)
    heads.update(_read_heads(cursor, subjects - heads.keys()))
    leaf_rows, link_rows, positions = [], [], []
    for event in events:
        links: list[Link] = []
        for subject in event.subjects:
            seq, prev = heads.get(subject, (0, None))
            links.append((subject, seq + 1, prev))
            heads[subject] = (seq + 1, position)
            link_rows.append((subject, seq + 1, position))
        leaf_rows.append(
            (
                position,
                stream_column(event.originator_id),
                event.originator_version,
                leaf_bytes(event.digest, links),
            )
        )
        positions.append(position)
        position += 1
    cursor.executemany(
        "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
        leaf_rows,
    )
    if link_rows:
        cursor.executemany(
            "INSERT INTO ledger_links (subject, seq, position) VALUES (?, ?, ?)", link_rows
        )
    return Appended(start, positions, heads)


def commit_to(cache: HeadCache, appended: Appended) -> None:
    """After the commit: the cache now describes the store up to the new tip.

    Only if it described the store up to where this append started (or was empty): a later
    append's commit_to may run first, and then the cache can no longer vouch for anything.
    """
    with cache.lock:
        if cache.tip is not None and cache.tip != appended.start:
            cache.tip, cache.heads = None, {}
            return
        if len(cache.heads) > cache.MAX_SUBJECTS:
            cache.heads = {}
        cache.heads.update(appended.heads)
        cache.tip = appended.positions[-1] + 1


def _read_heads(cursor: Cursor, subjects: set[str]) -> dict[str, tuple[int, int]]:
    """Each subject's latest (seq, position), one query per chunk of subjects.

    seq and position grow together, so MAX(position) is the position of MAX(seq).
    """
    heads = {}
    pending = sorted(subjects)
    for start in range(0, len(pending), HEADS_CHUNK):
        chunk = pending[start : start + HEADS_CHUNK]
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            "SELECT subject, MAX(seq), MAX(position) FROM ledger_links "
            f"WHERE subject IN ({marks}) GROUP BY subject",
            chunk,
        )
        for subject, seq, position in cursor.fetchall():
            heads[subject] = (seq, position)
    return heads
