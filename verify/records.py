"""Parse and check the shapes of §4 and §5: stored records, headers and leaves.

Parsed values are plain tuples and dicts; ``unverified_`` names what has been parsed but whose
hashes have not yet been checked against anything.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

import msgpack

from verify.canonical import decode_fixed_map, pack_ordered, parse_timestamp
from verify.errors import MalformedInput

FORMAT_VERSION = 1
HEADER_KEYS = (
    "key", "type", "actor", "format", "sealed", "stream", "session",
    "version", "original", "recorded", "subjects", "commitment",
)  # fmt: skip
SUBJECT_RE = re.compile(r"\A(patient|user):[0-9a-z-]{1,64}\Z")
STREAM_RE = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
PRACTICE_KEY = "practice"
KEY_NAME_RE = re.compile(r"\A(.+)#[0-9a-f]{32}\Z")
RECORD_KEYS = ("header", "sealed")
LEAF_KEYS = ("event", "links")

Link = tuple[str, int, int | None]


class Header(NamedTuple):
    type: str
    stream: str
    version: int
    actor: str | None
    session: str | None
    recorded: str
    original: str | None
    subjects: tuple[str, ...]
    key: str
    commitment: bytes
    sealed: bytes


class Leaf(NamedTuple):
    event: bytes
    links: tuple[Link, ...]


def split_record(state: bytes) -> tuple[bytes, bytes]:
    """The stored record (§4.4) → (header bytes, sealed payload)."""
    record = decode_fixed_map(state, RECORD_KEYS, "stored record")
    header, sealed = record["header"], record["sealed"]
    if type(header) is not bytes or type(sealed) is not bytes:
        raise MalformedInput("stored record's header and sealed must be bytes")
    return header, sealed


def _hash32(value: Any, name: str) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise MalformedInput(f"header {name} must be 32 bytes")
    return value


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and type(value) is not str:
        raise MalformedInput(f"header {name} must be text or nil")
    return value


def parse_header(header_bytes: bytes) -> Header:
    """Header bytes (§4.1) → Header, refusing any other shape."""
    h = decode_fixed_map(header_bytes, HEADER_KEYS, "header")
    if type(h["format"]) is not int or h["format"] != FORMAT_VERSION:
        raise MalformedInput(f"header format {h['format']!r} is not {FORMAT_VERSION}")
    if type(h["type"]) is not str or not h["type"]:
        raise MalformedInput("header type must be non-empty text")
    if type(h["stream"]) is not str or not STREAM_RE.match(h["stream"]):
        raise MalformedInput(f"header stream {h['stream']!r} is not a lowercase UUID")
    if type(h["version"]) is not int or h["version"] < 1:
        raise MalformedInput(f"header version {h['version']!r} is not a positive integer")
    parse_timestamp(h["recorded"])
    subjects = h["subjects"]
    if type(subjects) is not list or not all(
        type(s) is str and SUBJECT_RE.match(s) for s in subjects
    ):
        raise MalformedInput("header subjects must be a list of patient:/user: identifiers")
    encoded = [s.encode() for s in subjects]
    if len(subjects) > 1 and encoded != sorted(set(encoded)):
        raise MalformedInput("header subjects must be distinct and in ascending order")
    owner = key_owner(h["key"])
    if owner != PRACTICE_KEY and owner not in subjects:
        raise MalformedInput("header key belongs neither to the practice nor to a subject")
    return Header(
        type=h["type"],
        stream=h["stream"],
        version=h["version"],
        actor=_optional_text(h["actor"], "actor"),
        session=_optional_text(h["session"], "session"),
        recorded=h["recorded"],
        original=_optional_text(h["original"], "original"),
        subjects=tuple(subjects),
        key=h["key"],
        commitment=_hash32(h["commitment"], "commitment"),
        sealed=_hash32(h["sealed"], "sealed"),
    )


# A header is a fixmap of 12 (0x8c) and then its keys and values, each encoded on its own. The
# same items behind an array header of 24 decode to a list [key, value, key, value, ...], which
# is the canonical array exactly when the header is the canonical map with those keys in that
# order (verify.ranges reads headers so too).
_HEADER_ITEMS = b"\xdc\x00\x18"
_HEADER_KEY_LIST = list(HEADER_KEYS)
_unpackb = msgpack.unpackb
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack
# TIMESTAMP_RE's form with ASCII digits: every ASCII digit mapped to "0", anything else outside
# ASCII to 0xff, then one comparison
_DIGITS_AS_ZERO = bytes(
    ord("0") if chr(b) in "0123456789" else b if b < 0x80 else 0xFF for b in range(256)
)
_TIMESTAMP_FORM = b"0000-00-00T00:00:00.000000Z"
_STREAMS: dict[str, tuple[str, list[str]]] = {}  # stream -> (key, subjects) found well formed
_STREAMS_LIMIT = 100_000


def read_header(header_bytes: bytes) -> Header:
    """``parse_header``, about three times faster on a well-formed header: a header that passes
    every check here is one ``parse_header`` accepts, giving the same Header; on any doubt
    ``parse_header`` reads it and words the problem (tests/property/test_read_header_properties.py
    holds the two to it)."""
    try:
        header = _well_formed_header(header_bytes)
    except Exception:  # a value of an unexpected type or form: let parse_header judge
        header = None
    return header if header is not None else parse_header(header_bytes)


def _well_formed_header(header_bytes: bytes) -> Header | None:
    if type(header_bytes) is not bytes or header_bytes[:1] != b"\x8c":
        return None
    items = _HEADER_ITEMS + header_bytes[1:]
    h = _unpackb(items)
    if h[0::2] != _HEADER_KEY_LIST or _packb(h) != items:
        return None
    (
        key, type_, actor, format_, sealed, stream, session, version, original, recorded,
        subjects, commitment,
    ) = h[1::2]  # fmt: skip
    if (
        type(format_) is not int
        or format_ != FORMAT_VERSION
        or type(type_) is not str
        or not type_
        or type(version) is not int
        or version < 1
        or type(recorded) is not str
        or recorded.encode().translate(_DIGITS_AS_ZERO) != _TIMESTAMP_FORM
        or type(subjects) is not list
    ):
        return None
    datetime.fromisoformat(recorded[:-1])  # the calendar: ValueError for Feb 30
    # The stream, key and subjects, which a stream's events mostly repeat: a match with the last
    # ones found well formed together for the same stream stands for their checks (facts about
    # these values alone).
    if _STREAMS.get(stream) != (key, subjects):
        if type(stream) is not str or not STREAM_RE.match(stream):
            return None
        previous = ""
        for subject in subjects:
            # ASCII (the pattern says so), so text order is UTF-8 byte order
            if type(subject) is not str or not SUBJECT_RE.match(subject) or subject <= previous:
                return None
            previous = subject
        owner = key_owner(key)
        if owner is None or (owner != PRACTICE_KEY and owner not in subjects):
            return None
        if len(_STREAMS) >= _STREAMS_LIMIT:
            _STREAMS.clear()
        _STREAMS[stream] = (key, subjects)
    for text in (actor, session, original):
        if text is not None and type(text) is not str:
            return None
    for digest in (commitment, sealed):
        if type(digest) is not bytes or len(digest) != 32:
            return None
    return Header(
        type=type_, stream=stream, version=version, actor=actor, session=session,
        recorded=recorded, original=original, subjects=tuple(subjects), key=key,
        commitment=commitment, sealed=sealed,
    )  # fmt: skip


def parse_leaf(leaf_bytes: bytes) -> Leaf:
    """Leaf bytes (§5) → Leaf."""
    leaf = decode_fixed_map(leaf_bytes, LEAF_KEYS, "leaf")
    event = leaf["event"]
    if type(event) is not bytes or len(event) != 32:
        raise MalformedInput("leaf event must be a 32-byte digest")
    links: list[Link] = []
    for link in leaf["links"] if type(leaf["links"]) is list else [None]:
        if (
            type(link) is not list
            or len(link) != 3
            or type(link[0]) is not str
            or type(link[1]) is not int
            or link[1] < 1
            or not (link[2] is None or (type(link[2]) is int and link[2] >= 0))
        ):
            raise MalformedInput("leaf links must be [subject, seq >= 1, position or nil]")
        links.append((link[0], link[1], link[2]))
    return Leaf(event=event, links=tuple(links))


def leaf_bytes(event: bytes, links: tuple[Link, ...] | list[Link]) -> bytes:
    """The canonical leaf for an event digest and its links (what a writer appends)."""
    return pack_ordered({"event": event, "links": [list(link) for link in links]})


def head_bytes(subject: str, seq: int, position: int) -> bytes:
    """One subject-heads tree leaf (§7)."""
    return pack_ordered([subject, seq, position])


def key_owner(name: object) -> str | None:
    """Whose data key a header's ``key`` names (§4.3): ``<owner>#<32 hex digits>``."""
    found = KEY_NAME_RE.match(name) if type(name) is str else None
    return found.group(1) if found else None
