"""Checking one aligned range of log positions, independently of every other range.

A range is checked from its own rows only: each event (§4), each leaf (§5), and the subject
links whose previous leaf lies inside the range. What crosses the range's edge (each subject's
first link in it, the heads it leaves behind, its Merkle subtrees) is returned for
``verify.store`` to stitch together in order. That is what lets both cores check a store at once.

Every event goes first through the fast path written out in ``_RangeWalk.rows``, which only
answers "all checks pass"; any doubt sends it to ``_check_event``, which finds and words each
problem. The two must agree on what passes: tests/property/test_range_paths_properties.py holds
them to it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any
from uuid import UUID

import msgpack

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
from verify.tiles import TILE_HEIGHT, TILE_WIDTH, tile_problem

_sha256 = hashlib.sha256
_unpackb = msgpack.unpackb
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
_fromisoformat = datetime.fromisoformat
_state = itemgetter(5)

# Ranges are a power of two long, so every range's subtrees align with the prefix before it;
# verify.store picks the size between these two for the log and the workers at hand.
RANGE_SIZE = 8192
MAX_RANGE_SIZE = 1 << 17
FETCH = 4096

# TIMESTAMP_RE's form, checked by mapping every ASCII digit to "0" and anything else outside
# ASCII to 0xff: one C call on the encoded text instead of a regular expression
_DIGITS_AS_ZERO = bytes(
    ord("0") if chr(b) in "0123456789" else b if b < 0x80 else 0xFF for b in range(256)
)
_TIMESTAMP_FORM = b"0000-00-00T00:00:00.000000Z"

# A header is a fixmap of 12 (0x8c) and then its keys and values, each encoded on its own.
# The same items behind an array header of 24 decode to a list [key, value, key, value, ...],
# which is the canonical array exactly when the header is the canonical map with those keys in
# that order: unpacking a list skips building a dict and interning its keys (~1 us an event).
_HEADER_ITEMS = b"\xdc\x00\x18"
_HEADER_KEY_LIST = list(HEADER_KEYS)
_LEAF_ITEMS = b"\x94"  # a leaf is a fixmap of 2 (0x82)
_LEAF_KEY_LIST = list(LEAF_KEYS)

Heads = dict[str, tuple[int, int]]  # subject -> (seq, position) of its latest leaf
HeadHashes = dict[str, bytes]  # subject -> leaf hash of its head in the subject-heads tree
Row = tuple[int, str, Any, bytes, Any, Any, Any]  # see _RangeWalk.rows

# The rows of one window of positions. On SQLite, events are stored in commit order, so the
# event of the leaf at position p is usually at rowid p + offset, with one offset for a whole
# window: joining on that rowid reads both tables in storage order, where the JOIN on the key
# looks every event up in its index. A joined event counts only if its stream and version are
# the leaf's (the key is unique), so it is the row the JOIN would give; any leaf left without
# one is looked up by key, exactly as the JOIN does.
FIRST_LEAF_SQL = (
    "SELECT position, stream, version FROM ledger_leaves "
    "WHERE position >= ? AND position < ? ORDER BY position LIMIT 1"
)
EVENT_ROWID_SQL = (
    "SELECT rowid FROM stored_events WHERE originator_id = ? AND originator_version = ?"
)
ROWID_JOIN_SQL = (
    "SELECT l.position, l.stream, l.version, l.leaf, e.topic, e.state, e.position "
    "FROM ledger_leaves l LEFT JOIN stored_events e ON e.rowid = l.position + ? "
    "AND e.originator_id = l.stream AND e.originator_version = l.version "
    "WHERE l.position >= ? AND l.position < ? ORDER BY l.position"
)
EVENT_SQL = (
    "SELECT topic, state, position FROM stored_events "
    "WHERE originator_id = ? AND originator_version = ?"
)
MAX_KEYED = 64  # leaves of a window looked up by key one by one before the JOIN reads it all
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
    # every link the leaves carry, as links_digest of them; and how many
    links: bytes = b""
    link_count: int = 0
    # the roots of the range's full level-0 tiles, in order (the level-1 entries they make);
    # and each of its level-0 tiles that disagrees with the stored one (verify.tiles)
    tile_roots: list[bytes] = field(default_factory=list)
    tiles_checked: int = 0
    tile_problems: list[tuple[int, int, str, VerificationError]] = field(default_factory=list)


class _Doubt(Exception):
    """A check of the fast path did not pass: the event goes down the slow path."""


def links_digest(links: list[tuple[Any, ...]]) -> bytes:
    """SHA-256 of the links ``(position, subject, seq)`` of one range, sorted, as one msgpack
    array: what the leaves carry and what ``ledger_links`` holds for the range give the same
    digest exactly when they are the same multiset (sorted, equal lists; msgpack is injective
    over them). One C call a range, where comparing the links one by one kept them all."""
    try:
        links.sort()
    except TypeError:  # a value of another type: it cannot equal any link the leaves carry
        return b""
    return _sha256(_packb(links)).digest()


def stream_hex(value: Any) -> str:
    """A stream id as SQLite keeps it: 32 hex digits (PostgreSQL hands back a UUID)."""
    return value.hex if isinstance(value, UUID) else str(value)


def check_range(
    store: Any, start: int, stop: int, checkpoint_sizes: list[int], tiles: bool = False
) -> RangeResult:
    """Check positions [start, stop) of ``store`` (a verify.store.RawStore); with ``tiles``,
    also its stored level-0 tiles (``start`` a multiple of TILE_WIDTH)."""
    result = RangeResult(start=start, stop=start)
    walk = _RangeWalk(result, sorted(s for s in checkpoint_sizes if start < s <= stop))
    reader = _sqlite_rows if store.dialect == "sqlite" else _joined_rows
    for a in range(start, stop, FETCH):
        walk.rows(reader(store, a, min(stop, a + FETCH)))
    walk.finish(stop)
    if tiles:
        _check_level0_tiles(store, result, walk.hashes)
    return result


def _check_level0_tiles(store: Any, result: RangeResult, hashes: list[bytes]) -> None:
    """Compare the range's level-0 tiles with the stored ones: the leaf hashes are at hand."""
    first = result.start // TILE_WIDTH
    stored = {
        int(idx): bytes(tile)
        for idx, tile in store.rows(
            "SELECT idx, hashes FROM ledger_tiles WHERE level = 0 AND idx >= ? AND idx < ?",
            (first, first + -(-len(hashes) // TILE_WIDTH)),
        )
    }
    for i in range(0, len(hashes), TILE_WIDTH):
        index = first + i // TILE_WIDTH
        result.tiles_checked += 1
        problem = tile_problem(0, index, stored.get(index), b"".join(hashes[i : i + TILE_WIDTH]))
        if problem is not None:
            result.tile_problems.append((0, index, *problem))


def _joined_rows(store: Any, a: int, b: int) -> list[Row]:
    return [
        (p, stream_hex(s), v, leaf, topic, state, ep)
        for p, s, v, leaf, topic, state, ep in store.rows(JOIN_SQL, (a, b))
    ]


def _sqlite_rows(store: Any, a: int, b: int) -> list[Row]:
    first = store.rows(FIRST_LEAF_SQL, (a, b))
    if not first:
        return []
    position, stream, version = first[0]
    try:
        found = store.rows(EVENT_ROWID_SQL, (stream, version))
        offset = found[0][0] - position if found else 1
        rows = store.rows(ROWID_JOIN_SQL, (offset, a, b))
    except Exception:  # no rowid (another table layout): the JOIN still answers
        return _joined_rows(store, a, b)
    if None not in map(_state, rows):
        return rows
    keyed = 0
    for i, row in enumerate(rows):
        if row[5] is None:
            keyed += 1
            if keyed > MAX_KEYED:  # the events are not in commit order here
                return _joined_rows(store, a, b)
            position, stream, version, leaf = row[:4]
            found = store.rows(EVENT_SQL, (stream, version))
            if found:
                rows[i] = (position, stream, version, leaf, *found[0])
    return rows


# Values that repeat from event to event, checked once per process and kept across ranges:
# header stream -> (its row's hex form, key, subjects) last found well formed together. Facts
# about values alone, never about a store. Emptied when it reaches _CACHE_LIMIT streams: most
# events start a stream of their own (a read, a lab result), so a cache of every stream grew
# with the log (some 650 bytes an event: 716 MB for the store check at 1M events on
# PostgreSQL, bench/scale.py) and saved nothing for them; a stream's events that repeat (a
# patient's, a session's) mostly come close together, within the last 65,536 streams.
_STREAMS: dict[str, tuple[str, str, list[str]]] = {}
_CACHE_LIMIT = 1 << 16


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
        self.links: list[tuple[int, str, int]] = []  # every link the leaves carry
        self.doubted = 0  # events sent down the slow path
        if len(_STREAMS) > _CACHE_LIMIT:
            _STREAMS.clear()
        self._streams = _STREAMS

    def fail(self, where: str, error: VerificationError) -> None:
        self.result.problems.append((where, error))

    def rows(self, rows: list[Row]) -> None:
        """Rows of (position, stream (hex), version, leaf, topic, state, event position); the
        last three are None when no event has the leaf's stream and version.

        Each event first takes the fast path written out in the loop below: every check of
        ``_check_event``, with early exits and caches, answering only "all checks pass". Any
        check that fails, and any value of an unexpected type (which fails a test or raises),
        sends the event down ``_slow_event``, which finds and words the problem. Most of the
        store check's time is spent in this loop, so it is one function with its lookups
        hoisted out, trading some repetition for speed.
        """
        result = self.result
        first_links = result.first_links
        heads = self.heads
        heads_get = heads.get
        append_hash = self.hashes.append
        append_link = self.links.append
        streams = self._streams
        sha256, unpackb, packb = _sha256, _unpackb, _packb
        pending = self.pending
        due = pending[-1] if pending else -1
        changed = self.changed
        expected = self.next
        passed = 0
        for position, stream, version, leaf, topic, state, event_position in rows:
            if type(leaf) is not bytes:
                leaf = bytes(leaf)
            append_hash(sha256(b"\x00" + leaf).digest())
            try:
                if position != expected or event_position != position or type(state) is not bytes:
                    raise _Doubt
                # the stored record (§4.4): exactly its two keys, both bytes, canonical
                record = unpackb(state)
                if tuple(record) != RECORD_KEYS:
                    raise _Doubt
                header_bytes, sealed = record.values()
                if type(header_bytes) is not bytes or type(sealed) is not bytes:
                    raise _Doubt
                if packb(record) != state:
                    raise _Doubt
                # the header (§4.1): exactly its keys in order, canonical, each value checked.
                # Read as the array of its keys and values (see _HEADER_ITEMS).
                if header_bytes[0] != 0x8C:
                    raise _Doubt
                items = _HEADER_ITEMS + header_bytes[1:]
                h = unpackb(items)
                if h[0::2] != _HEADER_KEY_LIST or packb(h) != items:
                    raise _Doubt
                (
                    key, type_, actor, format_, sealed_hash, s, session, version_, original,
                    recorded, subjects, commitment,
                ) = h[1::2]  # fmt: skip
                if type_ != topic or type(topic) is not str or not topic:
                    raise _Doubt
                if type(version_) is not int or version_ != version or version_ < 1:
                    raise _Doubt
                if type(format_) is not int or format_ != FORMAT_VERSION:
                    raise _Doubt
                # TIMESTAMP_RE's form (its digits ASCII, as fromisoformat's are), then the
                # calendar: fromisoformat raises ValueError for Feb 30 (and reads the Z as UTC)
                if recorded.encode().translate(_DIGITS_AS_ZERO) != _TIMESTAMP_FORM:
                    raise _Doubt
                _fromisoformat(recorded)
                # The stream against the row's, the subjects, and whose key sealed the payload:
                # facts about these values alone, which a stream's events mostly repeat. A
                # match with the last ones checked for the same stream stands for the checks.
                seen = streams.get(s)
                if seen is None or seen[0] != stream or seen[1] != key or seen[2] != subjects:
                    if type(s) is not str or not STREAM_RE.match(s) or s.replace("-", "") != stream:
                        raise _Doubt
                    if type(subjects) is not list:
                        raise _Doubt
                    previous = ""
                    for subject in subjects:
                        if type(subject) is not str or not SUBJECT_RE.match(subject):
                            raise _Doubt
                        # ASCII (the pattern says so), so text order is UTF-8 byte order
                        if subject <= previous:
                            raise _Doubt
                        previous = subject
                    owner = key_owner(key)
                    if owner is None or (owner != PRACTICE_KEY and owner not in subjects):
                        raise _Doubt
                    seen = streams[s] = (stream, key, subjects)
                if (
                    (actor is not None and type(actor) is not str)
                    or (session is not None and type(session) is not str)
                    or (original is not None and type(original) is not str)
                    or type(commitment) is not bytes
                    or len(commitment) != 32
                    or sha256(sealed).digest() != sealed_hash
                ):
                    raise _Doubt
                # the leaf (§5): canonical, committing to the header, linking each subject
                # Read as the array of its keys and values, as the header is.
                if leaf[0] != 0x82:
                    raise _Doubt
                items = _LEAF_ITEMS + leaf[1:]
                claimed = unpackb(items)
                if claimed[0::2] != _LEAF_KEY_LIST or packb(claimed) != items:
                    raise _Doubt
                event, links = claimed[1::2]
                if event != sha256(header_bytes).digest() or type(links) is not list:
                    raise _Doubt
                count = len(links)
                if count != len(subjects):
                    raise _Doubt
                if count == 1:  # the usual case, without the loops
                    link = links[0]
                    if type(link) is not list or len(link) != 3:
                        raise _Doubt
                    subject, seq, prev = link
                    if subject != subjects[0] or type(seq) is not int:
                        raise _Doubt
                    known = heads_get(subject)
                    if known is None:
                        if seq < 1 or (prev is None) != (seq == 1):
                            raise _Doubt
                        if prev is not None and (type(prev) is not int or not 0 <= prev < position):
                            raise _Doubt
                    elif seq != known[0] + 1 or type(prev) is not int or prev != known[1]:
                        raise _Doubt
                elif count:
                    for subject, link in zip(subjects, links, strict=True):
                        if type(link) is not list or len(link) != 3:
                            raise _Doubt
                        linked, seq, prev = link
                        if linked != subject or type(seq) is not int:
                            raise _Doubt
                        known = heads_get(subject)
                        if known is None:
                            if seq < 1 or (prev is None) != (seq == 1):
                                raise _Doubt
                            if prev is not None and (
                                type(prev) is not int or not 0 <= prev < position
                            ):
                                raise _Doubt
                        elif seq != known[0] + 1 or type(prev) is not int or prev != known[1]:
                            raise _Doubt
            except Exception:
                self.next = expected
                self._slow_event(position, stream, version, leaf, topic, state, event_position)
            else:
                # All checks passed: record the links exactly as the slow path would.
                passed += 1
                # The subjects as first seen with this stream: one object for all its events,
                # so a range's result pickles it once.
                subjects = seen[2]
                if count == 1:
                    subject = subjects[0]
                    if known is None:
                        first_links[subject] = (seq, prev, position)
                    heads[subject] = changed[subject] = (seq, position)
                    append_link((position, subject, seq))
                elif count:
                    for subject, (_, seq, prev) in zip(subjects, links, strict=True):
                        if subject not in heads:
                            first_links[subject] = (seq, prev, position)
                        heads[subject] = changed[subject] = (seq, position)
                        append_link((position, subject, seq))
            expected = position + 1
            if expected == due:
                self.next = expected
                self._checkpoints_due()
                changed = self.changed
                due = pending[-1] if pending else -1
        self.next = expected
        result.events += passed

    def _slow_event(
        self, position: int, stream: str, version: Any, leaf: bytes, topic: Any, state: Any,
        event_position: Any,
    ) -> None:  # fmt: skip
        self.doubted += 1
        where = f"position {position}"
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
        """One event through ``rows`` as the next position: True when the fast path passed it
        (its links recorded), False when it went down ``_check_event``. For the property test
        that holds the two paths to the same answer."""
        self.next = position
        doubted = self.doubted
        self.rows([(position, stream, version, leaf, topic, state, position)])
        return self.doubted == doubted

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
            self.links.append((position, subject, seq))

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
        result.link_count = len(self.links)
        result.links = links_digest(self.links)
        # entry i of level 8 is the root of the range's i-th full level-0 tile
        result.tile_roots = levels[TILE_HEIGHT] if len(levels) > TILE_HEIGHT else []

    def _head_hashes(self) -> HeadHashes:
        # leaf_hash(head_bytes(subject, seq, position)), inlined: one per changed head
        return {
            subject: _sha256(b"\x00" + _packb([subject, seq, position])).digest()
            for subject, (seq, position) in self.changed.items()
        }
