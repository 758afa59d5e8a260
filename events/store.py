"""Append events and their leaves in one transaction under the writer lock (§5).

Called by both recorders with the lock already held: the next position is one past the last
leaf, and each subject's previous leaf comes from ``ledger_links``. Leaves are inserted before
the events, so the trigger that refuses an event without its leaf can see them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from events.db import Cursor
from events.encoding import LedgerStoredEvent
from events.heads import settle_recent_heads
from events.tiles import append_tiles
from verify.records import Link, leaf_bytes, parse_leaf

# SQLite (append_leaves): links go into ledger_links_recent, which has no index, and an append
# whose positions reach or cross a multiple of LINKS_MERGE_EVERY moves them all into
# ledger_links_mid in (subject, seq) order; the append that crosses a multiple of
# LINKS_SETTLE_EVERY then moves mid's into ledger_links_main. Each link put straight into a
# subject-keyed index changed a page of its own (the subjects of an append are scattered over
# the index), and SQLite writes every changed page whole to the WAL at commit: at 100 events
# per append that was 113 of the append's 241 WAL pages. A merge of many positions' links
# changes each page once instead, but a merge straight into main changes one page per subject
# of the batch once main is large enough for each subject's newest links to have a page of
# their own: 53 -> 117 -> 274 ms per merge of 4,096 positions at 10k, 100k and 1M links over
# 5,000 subjects (bench/links_merge.py). Mid holds at most LINKS_SETTLE_EVERY positions' links,
# so a merge into it changes at most its own pages whatever the size of main, and each
# subject's page of main is changed once per LINKS_SETTLE_EVERY positions rather than once per
# LINKS_MERGE_EVERY: 44 -> 48 -> 93 ms mean per 4,096 positions, the settling included.
# Readers see the three tables through the ledger_links view.
LINKS_MERGE_EVERY = 4096
LINKS_SETTLE_EVERY = 65536
MERGE_LINKS = (
    "INSERT INTO ledger_links_mid (subject, seq, position) "
    "SELECT subject, seq, position FROM ledger_links_recent ORDER BY subject, seq",
    "DELETE FROM ledger_links_recent",
)
SETTLE_LINKS = (
    "INSERT INTO ledger_links_main (subject, seq, position) "
    "SELECT subject, seq, position FROM ledger_links_mid ORDER BY subject, seq",
    "DELETE FROM ledger_links_mid",
)
# A subject's newest link outside recent (mid's are newer than main's).
LATEST_SETTLED = (
    "SELECT seq, position FROM ledger_links_mid WHERE subject = ? UNION ALL "
    "SELECT seq, position FROM ledger_links_main WHERE subject = ? ORDER BY seq DESC LIMIT 1"
)

# Work that must commit or fail together with the events (e.g. a key statement), given
# the cursor and the positions the events received.
AfterAppend = Callable[[Cursor, list[int]], None]
Heads = dict[str, tuple[int, int]]


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
        self.heads: Heads = {}
        # Threads sharing one ledger call commit_to after their commits, in any order.
        self.lock = threading.Lock()

    def lookup(self, tip: int, subjects: set[str]) -> Heads:
        """The cached heads of ``subjects``, if the cache describes the log up to ``tip``."""
        with self.lock:
            if self.tip != tip:
                self.tip, self.heads = None, {}  # another writer appended: start over
                return {}
            return {s: self.heads[s] for s in subjects if s in self.heads}

    def advance(self, tip: int, to: int, heads: Heads) -> None:
        """If the cache still describes the log up to ``tip``: it now does up to ``to``, the
        positions between holding ``heads`` (their subjects' heads as of ``to``)."""
        with self.lock:
            if self.tip == tip:
                self.heads.update(heads)
                self.tip = to

    def likely_missing(self, subjects: set[str]) -> set[str]:
        """The subjects a lookup will not find if no other writer has appended: a guess that
        lets a caller read their heads before it knows the tip (``lookup`` still decides)."""
        with self.lock:
            if self.tip is None:
                return set(subjects)
            return {s for s in subjects if s not in self.heads}


class Appended:
    """What one append produced, for the recorder to apply once the transaction commits."""

    def __init__(
        self,
        start: int,
        positions: list[int],
        heads: Heads,
        leaves: list[tuple[bytes, list[Link]]] | None = None,
    ) -> None:
        self.start = start
        self.positions = positions
        self.heads = heads
        self.leaves = leaves or []  # (leaf bytes, links) by position, for the checkpointer
        self.leaf_rows: list[tuple[Any, ...]] = []
        self.link_rows: list[tuple[str, int, int]] = []


def key_names(events: Sequence[Any]) -> list[str]:
    """The data keys ``events`` were sealed under, refusing events the mapper did not make."""
    for event in events:
        if not isinstance(event, LedgerStoredEvent) or len(event.digest) != 32:
            raise NotALedgerEvent("only events encoded by LedgerMapper can be appended")
    return sorted({event.key_name for event in events})


def start_position(last: int | None, keys_found: int, names: list[str]) -> int:
    """The first position of this append, once every data key it used is known to be there.

    Disposal deletes keys under the same writer lock, so none can vanish after this check.
    """
    if keys_found != len(names):
        raise StaleDataKey(set(names))
    return 0 if last is None else last + 1


def build_leaves(
    events: Sequence[Any], start: int, heads: Heads, stream_column: Callable[[Any], Any]
) -> Appended:
    """Each event's leaf and links, as rows for ``ledger_leaves`` and ``ledger_links``.

    ``heads`` holds the heads before ``start`` of exactly the events' subjects (and of no
    others: it becomes ``Appended.heads``); it is advanced in place.
    """
    position = start
    leaves: list[tuple[bytes, list[Link]]] = []
    leaf_rows: list[tuple[Any, ...]] = []
    link_rows: list[tuple[str, int, int]] = []
    for event in events:
        links: list[Link] = []
        for subject in event.subjects:
            seq, prev = heads.get(subject, (0, None))
            seq += 1
            links.append((subject, seq, prev))
            heads[subject] = (seq, position)
            link_rows.append((subject, seq, position))
        leaf = leaf_bytes(event.digest, links)
        leaves.append((leaf, links))
        leaf_rows.append(
            (position, stream_column(event.originator_id), event.originator_version, leaf)
        )
        position += 1
    appended = Appended(start, list(range(start, position)), heads, leaves)
    appended.leaf_rows, appended.link_rows = leaf_rows, link_rows
    return appended


def append_leaves(
    cursor: Cursor,
    events: Sequence[Any],
    stream_column: Callable[[Any], Any],
    cache: HeadCache,
) -> Appended:
    """Insert the leaves and links of ``events``; after the commit, call ``commit_to``."""
    names = key_names(events)
    marks = ", ".join("?" * len(names))
    # One statement: the next position, and whether every data key used is still there.
    cursor.execute(
        "SELECT (SELECT MAX(position) FROM ledger_leaves), "
        f"(SELECT COUNT(*) FROM ledger_data_keys WHERE name IN ({marks}))",
        names,
    )
    row = cursor.fetchone()
    assert row is not None
    start = start_position(row[0], row[1], names)
    subjects = {s for event in events for s in event.subjects}
    catch_up(cursor, cache, start)
    heads = cache.lookup(start, subjects)
    heads.update(read_heads(cursor, subjects - heads.keys()))
    appended = build_leaves(events, start, heads, stream_column)
    cursor.executemany(
        "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
        appended.leaf_rows,
    )
    append_tiles(cursor, start, [leaf for leaf, _ in appended.leaves])
    if appended.link_rows:
        cursor.executemany(
            "INSERT INTO ledger_links_recent (subject, seq, position) VALUES (?, ?, ?)",
            appended.link_rows,
        )
    settling = merge_due(appended, LINKS_SETTLE_EVERY)
    if settling or merge_due(appended, LINKS_MERGE_EVERY):
        # ledger_heads follows the settled links (events/heads.py): written once a merge.
        settle_recent_heads(cursor)
        for statement in MERGE_LINKS + (SETTLE_LINKS if settling else ()):
            cursor.execute(statement)
    return appended


def merge_due(appended: Appended, every: int) -> bool:
    """Whether this append's positions reach or cross a multiple of ``every``: the append that
    does moves the links along, in the append's transaction."""
    if not appended.positions:
        return False
    end = appended.positions[-1] + 1
    return appended.start // every != end // every


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


# Another process's appends (a second server worker's, say) since this writer's last commit:
# up to this many leaves are read to bring the head cache up to date, rather than dropping it
# and reading each subject's head from the links tables.
CATCH_UP_AT_MOST = 64


def catch_up(cursor: Cursor, cache: HeadCache, start: int) -> None:
    """Under the writer lock: if other writers appended a few leaves since the cache's tip,
    read their links and advance the cache to ``start``."""
    with cache.lock:
        tip = cache.tip
    if tip is None or not 0 < start - tip <= CATCH_UP_AT_MOST:
        return
    cursor.execute(
        "SELECT position, leaf FROM ledger_leaves WHERE position >= ? AND position < ? "
        "ORDER BY position",
        (tip, start),
    )
    heads: Heads = {}
    for position, leaf in cursor.fetchall():
        for subject, seq, _ in parse_leaf(bytes(leaf)).links:
            heads[subject] = (seq, position)
    cache.advance(tip, start, heads)


def read_heads(cursor: Cursor, subjects: Iterable[str]) -> Heads:
    """Each subject's latest (seq, position), on SQLite: from the recent links if it has any
    there (one scan of them for all the subjects), else from the end of its links in mid or
    main.

    One lookup per subject in main rather than one aggregate over all its links: those grow with
    every event about the subject, and an append must not slow down as they do.
    """
    wanted = sorted(subjects)
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    # SQLite takes a bare column (position) from the row whose MAX() it returns.
    cursor.execute(
        "SELECT subject, MAX(seq), position FROM ledger_links_recent "
        f"WHERE subject IN ({marks}) GROUP BY subject",
        wanted,
    )
    heads: Heads = {subject: (seq, position) for subject, seq, position in cursor.fetchall()}
    for subject in wanted:
        if subject in heads:
            continue
        cursor.execute(LATEST_SETTLED, (subject, subject))
        row = cursor.fetchone()
        if row is not None:
            heads[subject] = (row[0], row[1])
    return heads
