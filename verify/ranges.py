"""Checking one aligned range of log positions, independently of every other range.

A range is checked from its own rows only: each event (§4), each leaf (§5), and the subject
links whose previous leaf lies inside the range. What crosses the range's edge (each subject's
first link in it, the heads it leaves behind, its Merkle subtrees) is returned for
``verify.store`` to stitch together in order. That is what lets both cores check a store at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import msgpack

from verify.canonical import TIMESTAMP_RE
from verify.compact import CompactRange
from verify.errors import ChainBroken, HashMismatch, NotCanonical, VerificationError
from verify.hashing import short
from verify.merkle import leaf_hash
from verify.records import (
    FORMAT_VERSION,
    HEADER_KEYS,
    LEAF_KEYS,
    PRACTICE_KEY,
    RECORD_KEYS,
    STREAM_RE,
    SUBJECT_RE,
    Link,
    head_bytes,
    key_owner,
    leaf_bytes,
    parse_header,
    parse_leaf,
    split_record,
)

_sha256 = hashlib.sha256
_unpackb = msgpack.unpackb
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack

RANGE_SIZE = 8192  # a power of two, so every range's subtrees align with the prefix before it
FETCH = 4096
_MOD = 1 << 256

Heads = dict[str, tuple[int, int]]  # subject -> (seq, position) of its latest leaf
HeadHashes = dict[str, bytes]  # subject -> leaf hash of its head in the subject-heads tree


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


def link_term(subject: str, seq: int, position: int) -> int:
    """One link's share of the multiset hash compared with the ``ledger_links`` table."""
    data = f"{subject}\n{seq}\n{position}".encode()
    return int.from_bytes(hashlib.sha256(data).digest(), "big")


def _optional_texts(*values: Any) -> bool:
    return all(v is None or type(v) is str for v in values)


def stream_hex(value: Any) -> str:
    """A stream id as SQLite keeps it: 32 hex digits (PostgreSQL hands back a UUID)."""
    return value.hex if isinstance(value, UUID) else str(value)


def check_range(store: Any, start: int, stop: int, checkpoint_sizes: list[int]) -> RangeResult:
    """Check positions [start, stop) of ``store`` (a verify.store.RawStore)."""
    result = RangeResult(start=start, stop=start)
    walk = _RangeWalk(result, sorted(s for s in checkpoint_sizes if start < s <= stop))
    position = start
    while position < stop:
        rows = store.rows(
            "SELECT l.position, l.stream, l.version, l.leaf, e.topic, e.state, e.position "
            "FROM ledger_leaves l LEFT JOIN stored_events e "
            "ON e.originator_id = l.stream AND e.originator_version = l.version "
            "WHERE l.position >= ? AND l.position < ? ORDER BY l.position",
            (position, min(stop, position + FETCH)),
        )
        for row in rows:
            walk.row(*row)
        position = min(stop, position + FETCH)
    walk.finish(stop)
    return result


class _RangeWalk:
    def __init__(self, result: RangeResult, checkpoint_sizes: list[int]) -> None:
        self.result = result
        self.pending = list(reversed(checkpoint_sizes))
        self.range = CompactRange()
        self.next = result.start
        self.heads: Heads = {}  # every subject's latest leaf in this range
        self.changed: Heads = {}  # heads changed since the last snapshot

    def fail(self, where: str, error: VerificationError) -> None:
        self.result.problems.append((where, error))

    def row(
        self,
        position: int,
        stream: Any,
        version: int,
        leaf: Any,
        topic: Any,
        state: Any,
        event_position: Any,
    ) -> None:
        if position != self.next:
            self.fail(
                f"position {self.next}",
                ChainBroken(
                    f"positions {self.next}..{position - 1} are missing "
                    f"(the next leaf is at position {position})"
                ),
            )
            self._advance_to(position)
        leaf = bytes(leaf)
        self.range.append(_sha256(b"\x00" + leaf).digest())
        stream = stream_hex(stream)
        if (
            state is not None
            and event_position == position
            and self._fast_event(position, stream, version, leaf, topic, bytes(state))
        ):
            self.next = position + 1
            if self.pending and self.pending[-1] == self.next:
                self._checkpoints_due()
            return
        where = f"position {position}"
        if state is None:
            self.fail(where, ChainBroken(f"leaf names event {stream} v{version}, which is missing"))
            self._follow_leaf(position, leaf)
        else:
            if event_position != position:
                self.fail(where, ChainBroken(f"the event row says position {event_position}"))
            self._check_event(position, where, stream, version, leaf, topic, bytes(state))
        self.next = position + 1
        self._checkpoints_due()

    def _fast_event(
        self, position: int, stream: str, version: int, leaf: bytes, topic: Any, state: bytes
    ) -> bool:
        """Every check of ``_check_event`` as plain C calls with early exits; True when all pass.

        False sends the event down ``_check_event``, which finds and words the problem. Most of
        the store check's time is here, so it trades a little repetition for speed.
        """
        try:
            record = _unpackb(state)
            if type(record) is not dict or tuple(record) != RECORD_KEYS:
                return False
            header_bytes, sealed = record["header"], record["sealed"]
            if type(header_bytes) is not bytes or type(sealed) is not bytes:
                return False
            if _packb(record) != state:
                return False
            h = _unpackb(header_bytes)
            if type(h) is not dict or tuple(h) != HEADER_KEYS or _packb(h) != header_bytes:
                return False
            claimed = _unpackb(leaf)
            if type(claimed) is not dict or tuple(claimed) != LEAF_KEYS or _packb(claimed) != leaf:
                return False
        except Exception:
            return False
        s, subjects, key, recorded = h["stream"], h["subjects"], h["key"], h["recorded"]
        if (
            type(h["format"]) is not int
            or h["format"] != FORMAT_VERSION
            or h["type"] != topic
            or type(topic) is not str
            or type(s) is not str
            or s.replace("-", "") != stream
            or not STREAM_RE.match(s)
            or type(h["version"]) is not int
            or h["version"] != version
            or type(recorded) is not str
            or not TIMESTAMP_RE.match(recorded)
            or type(subjects) is not list
            or (owner := key_owner(key)) is None
            or (owner != PRACTICE_KEY and owner not in subjects)
            or not _optional_texts(h["actor"], h["session"], h["original"])
            or type(h["commitment"]) is not bytes
            or len(h["commitment"]) != 32
            or _sha256(sealed).digest() != h["sealed"]
        ):
            return False
        previous = b""
        for subject in subjects:
            if type(subject) is not str or not SUBJECT_RE.match(subject):
                return False
            encoded = subject.encode()
            if encoded <= previous:
                return False
            previous = encoded
        try:
            datetime.fromisoformat(recorded[:-1])
        except ValueError:
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
            known = heads.get(subject)
            if known is None:
                if type(seq) is not int or seq < 1 or (prev is None) != (seq == 1):
                    return False
                if prev is not None and (type(prev) is not int or not 0 <= prev < position):
                    return False
            elif seq != known[0] + 1 or prev != known[1]:
                return False
        # All checks passed: record the links exactly as the slow path would.
        self.result.events += 1
        self._link(
            position,
            [(subject, link[1], link[2]) for subject, link in zip(subjects, links, strict=True)],
        )
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
            term = link_term(subject, seq, position)
            self.result.links_sum = (self.result.links_sum + term) % _MOD

    def _follow_leaf(self, position: int, leaf: bytes) -> None:
        # Without a readable event, keep the chains going from what the leaf itself claims,
        # so one bad event is one problem rather than one per later event of its subjects.
        try:
            self._link(position, parse_leaf(leaf).links)
        except VerificationError as e:
            self.fail(f"position {position}", e)

    def _advance_to(self, position: int) -> None:
        # Missing positions still count towards the tree size, so roots will not match: the
        # problem is reported once here, and at every checkpoint that covers it.
        self.next = position

    def _checkpoints_due(self) -> None:
        while self.pending and self.pending[-1] == self.next:
            size = self.pending.pop()
            self.result.at_sizes[size] = (self.range.nodes(), self._head_hashes())
            self.changed = {}

    def finish(self, stop: int) -> None:
        self.result.stop = self.next
        self.result.nodes = self.range.nodes()
        self.result.tail_heads = self._head_hashes()
        self.result.heads = self.heads

    def _head_hashes(self) -> HeadHashes:
        return {
            subject: leaf_hash(head_bytes(subject, seq, position))
            for subject, (seq, position) in self.changed.items()
        }
