"""Checking one aligned range of log positions, independently of every other range.

A range is checked from its own rows only: each event (§4), each leaf (§5), and the subject
links whose previous leaf lies inside the range. What crosses the range's edge (each subject's
first link in it, the heads it leaves behind, its Merkle subtrees) is returned for
``verify.store`` to stitch together in order. That is what lets both cores check a store at once.

Every event goes first through ``_RangeWalk._fast_event``, which only answers "all checks pass";
any doubt sends it to ``_check_event``, which finds and words each problem. The two must agree
on what passes: tests/property/test_range_paths_properties.py holds them to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import methodcaller
from typing import Any
from uuid import UUID

import msgpack

from verify.canonical import TIMESTAMP_RE
from verify.errors import ChainBroken, HashMismatch, NotCanonical, VerificationError
from verify.hashing import short
from verify.records import (
    FORMAT_VERSION,
    HEADER_KEYS,
    LEAF_KEYS,
    PRACTICE_KEY,
    RECORD_KEYS,
    STREAM_RE,
    SUBJECT_RE,
    Link,
    key_owner,
    leaf_bytes,
    parse_header,
    parse_leaf,
    split_record,
)

_sha256 = hashlib.sha256
_digest = methodcaller("digest")
_unpackb = msgpack.unpackb
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
_fromisoformat = datetime.fromisoformat

RANGE_SIZE = 8192  # a power of two, so every range's subtrees align with the prefix before it
FETCH = 4096
_MOD = 1 << 256

Heads = dict[str, tuple[int, int]]  # subject -> (seq, position) of its latest leaf
HeadHashes = dict[str, bytes]  # subject -> leaf hash of its head in the subject-heads tree
Row = tuple[int, str, Any, bytes, Any, Any, Any]  # see _RangeWalk.rows

# The rows of one window of positions. On SQLite, two scans in storage order replace the JOIN's
# random lookup of every event by its key: events are stored in commit order, so the events of
# a window of positions sit in a window of rowids. Each event found there is the row the JOIN
# would have given only if its stream and version are the leaf's (the key is unique); any leaf
# without such a row is looked up by key, exactly as the JOIN does.
LEAVES_SQL = (
    "SELECT position, stream, version, leaf FROM ledger_leaves "
    "WHERE position >= ? AND position < ? ORDER BY position"
)
EVENTS_BY_ROWID_SQL = (
    "SELECT originator_id, originator_version, topic, state, position FROM stored_events "
    "WHERE rowid >= ? AND rowid < ?"
)
EVENT_ROWID_SQL = (
    "SELECT rowid FROM stored_events WHERE originator_id = ? AND originator_version = ?"
)
EVENT_SQL = (
    "SELECT topic, state, position FROM stored_events "
    "WHERE originator_id = ? AND originator_version = ?"
)
JOIN_SQL = (
    "SELECT l.position, l.stream, l.version, l.leaf, e.topic, e.state, e.position "
    "FROM ledger_leaves l LEFT JOIN stored_events e "
    "ON e.originator_id = l.stream AND e.originator_version = l.version "
    "WHERE l.position >= ? AND l.position < ? ORDER BY l.position"
)


@dataclass
class RangeResult:
    start: int
    stop: int  # one past the last position read
    events: int = 0
    problems: list[tuple[str, VerificationError]] = field(default_factory=list)
    # subject -> (seq, prev, position) of the subject's first link in this range
    first_links: dict[str, tuple[int, int | None, int]] = field(default_factory=dict)
    # checkpoint size -> (compact-range nodes of [start, size), heads changed since the
    # previous snapshot); then the heads changed after the last snapshot
    at_sizes: dict[int, tuple[list[tuple[int, bytes]], HeadHashes]] = field(default_factory=dict)
    tail_heads: HeadHashes = field(default_factory=dict)
    heads: Heads = field(default_factory=dict)  # every subject's latest leaf in this range
    nodes: list[tuple[int, bytes]] = field(default_factory=list)
    links_sum: int = 0  # multiset hash of every (subject, seq, position) the leaves carry


def link_text(subject: str, seq: int, position: int) -> str:
    """One link as the multiset hash takes it; the links index query spells it the same way."""
    return f"{subject}\n{seq}\n{position}"


def links_sum(texts: Iterator[str] | Sequence[str]) -> int:
    """The multiset hash of links (as ``link_text``): the sum of their SHA-256s, mod 2^256.

    Order does not matter, so the leaves' links (in log order) and the ``ledger_links`` table
    (in any order) can be compared without sorting either. Each step is a C call over the whole
    sequence: no Python runs per link.
    """
    return sum(map(int.from_bytes, map(_digest, map(_sha256, map(str.encode, texts))))) % _MOD


def link_term(subject: str, seq: int, position: int) -> int:
    """One link's share of the multiset hash compared with the ``ledger_links`` table."""
    return links_sum([link_text(subject, seq, position)])


def stream_hex(value: Any) -> str:
    """A stream id as SQLite keeps it: 32 hex digits (PostgreSQL hands back a UUID)."""
    return value.hex if isinstance(value, UUID) else str(value)


def check_range(store: Any, start: int, stop: int, checkpoint_sizes: list[int]) -> RangeResult:
    """Check positions [start, stop) of ``store`` (a verify.store.RawStore)."""
    result = RangeResult(start=start, stop=start)
    walk = _RangeWalk(result, sorted(s for s in checkpoint_sizes if start < s <= stop))
    reader = _sqlite_rows if store.dialect == "sqlite" else _joined_rows
    for a in range(start, stop, FETCH):
        walk.rows(reader(store, a, min(stop, a + FETCH)))
    walk.finish(stop)
    return result


def _joined_rows(store: Any, a: int, b: int) -> list[Row]:
    return [
        (p, stream_hex(s), v, leaf, topic, state, ep)
        for p, s, v, leaf, topic, state, ep in store.rows(JOIN_SQL, (a, b))
    ]


def _sqlite_rows(store: Any, a: int, b: int) -> list[Row]:
    leaves = store.rows(LEAVES_SQL, (a, b))
    if not leaves:
        return []
    try:
        found = store.rows(EVENT_ROWID_SQL, (leaves[0][1], leaves[0][2]))
        offset = found[0][0] - leaves[0][0] if found else 1
        window = store.rows(EVENTS_BY_ROWID_SQL, (a + offset, b + offset))
    except Exception:  # no rowid (another table layout): the JOIN still answers
        return _joined_rows(store, a, b)
    by_position = {row[4]: row for row in window}
    rows: list[Row] = []
    append = rows.append
    for position, stream, version, leaf in leaves:
        event = by_position.get(position)
        if event is not None and event[0] == stream and event[1] == version:
            append((position, stream, version, leaf, event[2], event[3], position))
            continue
        keyed = store.rows(EVENT_SQL, (stream, version))
        topic, state, event_position = keyed[0] if keyed else (None, None, None)
        append((position, stream, version, leaf, topic, state, event_position))
    return rows


# Values that repeat from event to event, each checked once per process and kept across ranges:
# header stream -> its hex form (how SQLite keeps it); key name -> its owner; subjects and
# topics found well formed. Facts about a value alone, never about a store.
_STREAMS: dict[str, str] = {}
_OWNERS: dict[str, str] = {}
_SUBJECTS: set[str] = set()
_TOPICS: set[str] = set()
_CACHE_LIMIT = 1_000_000


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Every perfect subtree of the range, level by level (a ragged end is left out)."""
    levels = [hashes]
    level = hashes
    while len(level) > 1:
        pairs = iter(level)
        level = [_sha256(b"\x01" + x + y).digest() for x, y in zip(pairs, pairs, strict=False)]
        levels.append(level)
    return levels


def _compact_nodes(levels: list[list[bytes]], count: int) -> list[tuple[int, bytes]]:
    """The compact range of the first ``count`` leaves: one perfect subtree per bit of count."""
    nodes = []
    offset = 0
    for height in range(len(levels) - 1, -1, -1):
        width = 1 << height
        if count & width:
            nodes.append((width, levels[height][offset >> height]))
            offset += width
    return nodes


class _RangeWalk:
    def __init__(self, result: RangeResult, checkpoint_sizes: list[int]) -> None:
        self.result = result
        self.pending = list(reversed(checkpoint_sizes))
        self.hashes: list[bytes] = []  # leaf hashes, in the order read
        self.snapshots: list[tuple[int, int]] = []  # (checkpoint size, leaf hashes by then)
        self.next = result.start
        self.heads: Heads = {}  # every subject's latest leaf in this range
        self.changed: Heads = {}  # heads changed since the last snapshot
        self.links: list[str] = []  # every link the leaves carry, as link_text
        if len(_STREAMS) + len(_OWNERS) + len(_SUBJECTS) + len(_TOPICS) > _CACHE_LIMIT:
            for cache in (_STREAMS, _OWNERS, _SUBJECTS, _TOPICS):
                cache.clear()
        self._streams = _STREAMS
        self._owners = _OWNERS
        self._subjects = _SUBJECTS
        self._topics = _TOPICS

    def fail(self, where: str, error: VerificationError) -> None:
        self.result.problems.append((where, error))

    def rows(self, rows: list[Row]) -> None:
        """Rows of (position, stream (hex), version, leaf, topic, state, event position); the
        last three are None when no event has the leaf's stream and version."""
        fast = self._fast_event
        append_hash = self.hashes.append
        pending = self.pending
        for position, stream, version, leaf, topic, state, event_position in rows:
            if position != self.next:
                self.fail(
                    f"position {self.next}",
                    ChainBroken(
                        f"positions {self.next}..{position - 1} are missing "
                        f"(the next leaf is at position {position})"
                    ),
                )
                # Missing positions still count towards the tree size, so roots will not
                # match: the problem is reported once here, and at every checkpoint after it.
            leaf = bytes(leaf)
            append_hash(_sha256(b"\x00" + leaf).digest())
            self.next = position + 1
            if not (
                state is not None
                and event_position == position
                and fast(position, stream, version, leaf, topic, bytes(state))
            ):
                self._slow_event(position, stream, version, leaf, topic, state, event_position)
            if pending and pending[-1] == self.next:
                self._checkpoints_due()

    def _slow_event(
        self, position: int, stream: str, version: Any, leaf: bytes, topic: Any, state: Any,
        event_position: Any,
    ) -> None:  # fmt: skip
        where = f"position {position}"
        stream = stream_hex(stream)
        if state is None:
            self.fail(where, ChainBroken(f"leaf names event {stream} v{version}, which is missing"))
            self._follow_leaf(position, leaf)
            return
        if event_position != position:
            self.fail(where, ChainBroken(f"the event row says position {event_position}"))
        self._check_event(position, where, stream, version, leaf, topic, bytes(state))

    def _fast_event(
        self, position: int, stream: str, version: Any, leaf: bytes, topic: Any, state: bytes
    ) -> bool:
        """Every check of ``_check_event``, with early exits; True (links recorded) when all pass.

        False sends the event down ``_check_event``, which finds and words the problem. Most of
        the store check's time is here, so it trades a little repetition for speed. Any value
        of an unexpected type either fails a test here or raises, which also means False.
        """
        try:
            record = _unpackb(state)
            header_bytes, sealed = record["header"], record["sealed"]
            if (
                type(header_bytes) is not bytes
                or type(sealed) is not bytes
                or tuple(record) != RECORD_KEYS
                or _packb(record) != state
            ):
                return False
            h = _unpackb(header_bytes)
            if type(h) is not dict or tuple(h) != HEADER_KEYS or _packb(h) != header_bytes:
                return False
            claimed = _unpackb(leaf)
            if type(claimed) is not dict or tuple(claimed) != LEAF_KEYS or _packb(claimed) != leaf:
                return False
            s = h["stream"]
            if self._streams.get(s) != stream:
                if type(s) is not str or not STREAM_RE.match(s) or s.replace("-", "") != stream:
                    return False
                self._streams[s] = stream
            if h["type"] != topic or topic not in self._topics:
                if type(topic) is not str or not topic or h["type"] != topic:
                    return False
                self._topics.add(topic)
            v, f = h["version"], h["format"]
            if type(v) is not int or v != version or v < 1:
                return False
            if type(f) is not int or f != FORMAT_VERSION:
                return False
            recorded = h["recorded"]
            if type(recorded) is not str or not TIMESTAMP_RE.match(recorded):
                return False
            _fromisoformat(recorded[:-1])  # the calendar: raises ValueError for Feb 30
            subjects = h["subjects"]
            if type(subjects) is not list:
                return False
            known_subjects = self._subjects
            previous = ""
            for subject in subjects:
                if subject not in known_subjects:
                    if type(subject) is not str or not SUBJECT_RE.match(subject):
                        return False
                    known_subjects.add(subject)
                # ASCII (the pattern says so), so text order is UTF-8 byte order
                if subject <= previous:
                    return False
                previous = subject
            key = h["key"]
            owner = self._owners.get(key)
            if owner is None:
                owner = key_owner(key)
                if owner is None:
                    return False
                self._owners[key] = owner
            if owner != PRACTICE_KEY and owner not in subjects:
                return False
            a, se, o, c = h["actor"], h["session"], h["original"], h["commitment"]
            if (
                (a is not None and type(a) is not str)
                or (se is not None and type(se) is not str)
                or (o is not None and type(o) is not str)
                or type(c) is not bytes
                or len(c) != 32
                or _sha256(sealed).digest() != h["sealed"]
            ):
                return False
            links = claimed["links"]
            if claimed["event"] != _sha256(header_bytes).digest() or type(links) is not list:
                return False
            if len(links) != len(subjects):
                return False
            heads = self.heads
            for subject, link in zip(subjects, links, strict=True):
                if type(link) is not list or len(link) != 3 or link[0] != subject:
                    return False
                seq, prev = link[1], link[2]
                if type(seq) is not int:
                    return False
                known = heads.get(subject)
                if known is None:
                    if seq < 1 or (prev is None) != (seq == 1):
                        return False
                    if prev is not None and (type(prev) is not int or not 0 <= prev < position):
                        return False
                elif seq != known[0] + 1 or type(prev) is not int or prev != known[1]:
                    return False
        except Exception:
            return False
        # All checks passed: record the links exactly as the slow path would.
        self.result.events += 1
        first_links, changed, texts = self.result.first_links, self.changed, self.links
        for subject, link in zip(subjects, links, strict=True):
            seq = link[1]
            if subject not in heads:
                first_links.setdefault(subject, (seq, link[2], position))
            heads[subject] = changed[subject] = (seq, position)
            texts.append(f"{subject}\n{seq}\n{position}")
        return True

    def _check_event(
        self, position: int, where: str, stream: str, version: int, leaf: bytes, topic: Any,
        state: bytes,
    ) -> None:  # fmt: skip
        self.result.events += 1
        try:
            header_bytes, sealed = split_record(state)
            header = parse_header(header_bytes)
        except VerificationError as e:
            self.fail(f"{where} ({stream} v{version})", e)
            self._follow_leaf(position, leaf)
            return
        if header.stream.replace("-", "") != stream or header.version != version:
            self.fail(
                where,
                ChainBroken(
                    f"header names {header.stream} v{header.version}, "
                    f"the row is {stream} v{version}"
                ),
            )
        if header.type != topic:
            self.fail(
                where, HashMismatch(f"row topic is {topic!r}, header type is {header.type!r}")
            )
        sealed_hash = hashlib.sha256(sealed).digest()
        if sealed_hash != header.sealed:
            self.fail(
                where,
                HashMismatch(
                    f"sealed payload hashes to {short(sealed_hash)}, "
                    f"header says {short(header.sealed)}"
                ),
            )
        digest = hashlib.sha256(header_bytes).digest()
        try:
            claimed = parse_leaf(leaf)
        except VerificationError as e:
            self.fail(where, e)
            return
        if claimed.event != digest:
            self.fail(
                where,
                HashMismatch(
                    f"leaf commits to event {short(claimed.event)}, "
                    f"the header hashes to {short(digest)}"
                ),
            )
        if [link[0] for link in claimed.links] != list(header.subjects):
            self.fail(
                where,
                ChainBroken(
                    f"leaf links subjects {[lk[0] for lk in claimed.links]}, "
                    f"the header names {list(header.subjects)}"
                ),
            )
        self._link(position, claimed.links)
        if claimed.event == digest and leaf != leaf_bytes(digest, claimed.links):
            self.fail(where, NotCanonical("leaf bytes are not canonical"))

    def _link(self, position: int, links: Sequence[Link]) -> None:
        """Check each claimed link against the subject's previous leaf in this range."""
        heads = self.heads
        for subject, seq, prev in links:
            known = heads.get(subject)
            if known is None:
                self.result.first_links.setdefault(subject, (seq, prev, position))
            elif (seq, prev) != (known[0] + 1, known[1]):
                self.fail(
                    f"position {position}",
                    ChainBroken(
                        f"link for {subject} is [#{seq}, prev {prev}], "
                        f"expected [#{known[0] + 1}, prev {known[1]}]"
                    ),
                )
            heads[subject] = self.changed[subject] = (seq, position)
            self.links.append(link_text(subject, seq, position))

    def _follow_leaf(self, position: int, leaf: bytes) -> None:
        # Without a readable event, keep the chains going from what the leaf itself claims,
        # so one bad event is one problem rather than one per later event of its subjects.
        try:
            self._link(position, parse_leaf(leaf).links)
        except VerificationError as e:
            self.fail(f"position {position}", e)

    def _checkpoints_due(self) -> None:
        while self.pending and self.pending[-1] == self.next:
            size = self.pending.pop()
            self.snapshots.append((size, len(self.hashes)))
            self.result.at_sizes[size] = ([], self._head_hashes())
            self.changed = {}

    def finish(self, stop: int) -> None:
        result = self.result
        levels = _levels(self.hashes)
        for size, count in self.snapshots:
            result.at_sizes[size][0].extend(_compact_nodes(levels, count))
        result.stop = self.next
        result.nodes = _compact_nodes(levels, len(self.hashes))
        result.tail_heads = self._head_hashes()
        result.heads = self.heads
        result.links_sum = links_sum(self.links)

    def _head_hashes(self) -> HeadHashes:
        # leaf_hash(head_bytes(subject, seq, position)), inlined: one per changed head
        return {
            subject: _sha256(b"\x00" + _packb([subject, seq, position])).digest()
            for subject, (seq, position) in self.changed.items()
        }
