"""Stored records, headers and leaves (LEDGER_FORMAT.md §4, §5): what the writer produces parses,
and each malformation is refused with its own message."""

from __future__ import annotations

import hashlib
from types import SimpleNamespace
from typing import Any

import msgpack
import pytest

from events.encoding import subjects_of
from verify.canonical import encode
from verify.errors import MalformedInput, NotCanonical
from verify.records import (
    HEADER_KEYS,
    Header,
    Leaf,
    head_bytes,
    leaf_bytes,
    parse_header,
    parse_leaf,
    split_record,
)

STREAM = "0b6f3c2e-5a1d-4c8e-9f70-2d4b6a8c0e12"
ALICE = "patient:3f2a9c1e-0b7d-4e5f-8a6b-1c2d3e4f5a6b"
BOB = "user:7c8d9e0f-1a2b-4c3d-8e5f-6a7b8c9d0e1f"
SEALED = hashlib.sha256(b"sealed payload").digest()
COMMITMENT = hashlib.sha256(b"salt and payload").digest()
DIGEST = hashlib.sha256(b"header").digest()
MISSING = object()
SUFFIX = "#" + "0123456789abcdef" * 2  # a data key is named <owner>#<32 hex digits> (§4.3)
NOT_OWNED = "header key belongs neither to the practice nor to a subject"


def header_fields(**changes: Any) -> dict[str, Any]:
    """A header as §4.1 lists it (what events' mapper builds), with ``changes`` applied."""
    fields: dict[str, Any] = {
        "key": ALICE + SUFFIX,
        "type": "tests.support:Chart.Opened",
        "actor": BOB,
        "format": 1,
        "sealed": SEALED,
        "stream": STREAM,
        "session": "session-1",
        "version": 1,
        "original": None,
        "recorded": "2026-11-25T06:45:05.123456Z",
        "subjects": [ALICE, BOB],
        "commitment": COMMITMENT,
    }
    for name, value in changes.items():
        if value is MISSING:
            del fields[name]
        else:
            fields[name] = value
    return fields


def header(**changes: Any) -> bytes:
    return encode(header_fields(**changes))


# --- headers that parse --------------------------------------------------------------------------


def test_the_header_keys_are_listed_in_canonical_order() -> None:
    packed = [msgpack.packb(key) for key in HEADER_KEYS]
    assert packed == sorted(packed)
    assert len(HEADER_KEYS) == 12


def test_a_header_of_section_4_1_parses_into_its_fields() -> None:
    assert parse_header(header()) == Header(
        type="tests.support:Chart.Opened",
        stream=STREAM,
        version=1,
        actor=BOB,
        session="session-1",
        recorded="2026-11-25T06:45:05.123456Z",
        original=None,
        subjects=(ALICE, BOB),
        key=ALICE + SUFFIX,
        commitment=COMMITMENT,
        sealed=SEALED,
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"key": "practice" + SUFFIX, "subjects": []},  # a practice event concerns nobody
        {"key": "practice" + SUFFIX},  # sealed under the practice key though it has subjects
        {"actor": None, "session": None},  # the system acting
        {"original": "Tue, 24 Nov 2026 22:45:05 -0800"},  # an outside time kept as received
        {"version": 2**64 - 1},
        {"subjects": [ALICE], "key": ALICE + SUFFIX},
        {"subjects": ["patient:" + "a" * 64], "key": "patient:" + "a" * 64 + SUFFIX},
        {
            "subjects": ["patient:aa", "patient:b"],
            "key": "patient:b" + SUFFIX,
        },  # by bytes, not length
    ],
)
def test_every_shape_the_writer_may_produce_parses(changes: dict[str, Any]) -> None:
    parsed = parse_header(header(**changes))
    assert parsed.subjects == tuple(header_fields(**changes)["subjects"])


def test_subjects_in_the_order_the_mapper_sorts_them_parse() -> None:
    event = SimpleNamespace(subjects=(BOB, "patient:b", ALICE, "patient:aa", BOB))
    subjects = list(subjects_of(event))
    assert subjects == [ALICE, "patient:aa", "patient:b", BOB]  # "3" < "a" < "b"; "p" < "u"
    parsed = parse_header(header(subjects=subjects, key=subjects[0] + SUFFIX))
    assert parsed.subjects == tuple(subjects)


# --- headers that do not -------------------------------------------------------------------------

EXACT_KEYS = "^header does not have exactly the keys key, type, actor, format, sealed, stream"


@pytest.mark.parametrize("name", HEADER_KEYS)
def test_a_header_missing_a_key_is_malformed(name: str) -> None:
    with pytest.raises(MalformedInput, match=EXACT_KEYS):
        parse_header(header(**{name: MISSING}))


def test_a_header_with_an_extra_key_is_malformed() -> None:
    with pytest.raises(MalformedInput, match=EXACT_KEYS):
        parse_header(header(extra="x"))


def test_a_header_whose_keys_are_out_of_order_is_malformed() -> None:
    fields = header_fields()
    reordered = msgpack.packb(dict(sorted(fields.items())), use_bin_type=True)
    with pytest.raises(MalformedInput, match=EXACT_KEYS):
        parse_header(reordered)


def test_a_header_with_a_duplicated_key_is_not_canonical() -> None:
    data = header()
    twice = b"\x8d" + data[1:] + encode("original") + encode(None)
    with pytest.raises(NotCanonical, match=r"^header: bytes are not the canonical encoding"):
        parse_header(twice)


def test_a_header_with_a_wider_integer_header_is_not_canonical() -> None:
    data = header()
    wide = data.replace(b"\xa7version\x01", b"\xa7version\xcd\x00\x01")
    assert wide != data
    with pytest.raises(NotCanonical, match=r"^header: bytes are not the canonical encoding"):
        parse_header(wide)


def test_a_header_with_trailing_bytes_is_not_canonical() -> None:
    with pytest.raises(NotCanonical, match=r"^header: 1 trailing bytes after the value$"):
        parse_header(header() + b"\xc0")


def test_a_header_that_is_not_a_map_is_malformed() -> None:
    with pytest.raises(MalformedInput, match=EXACT_KEYS):
        parse_header(encode(list(header_fields().values())))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": 2}, "^header format 2 is not 1$"),
        ({"format": 0}, "^header format 0 is not 1$"),
        ({"format": "1"}, "^header format '1' is not 1$"),
        ({"format": True}, "^header format True is not 1$"),
        ({"type": ""}, "^header type must be non-empty text$"),
        ({"type": b"tests.support:Chart.Opened"}, "^header type must be non-empty text$"),
        ({"stream": STREAM.upper()}, "^header stream '0B6F3C2E-.*' is not a lowercase UUID$"),
        ({"stream": STREAM.replace("-", "")}, "^header stream '0b6f3c2e5a1d.*' is not a low"),
        ({"stream": "{" + STREAM + "}"}, "is not a lowercase UUID$"),
        ({"stream": STREAM + "\n"}, "is not a lowercase UUID$"),
        ({"stream": STREAM.encode()}, "is not a lowercase UUID$"),
        ({"version": 0}, "^header version 0 is not a positive integer$"),
        ({"version": -1}, "^header version -1 is not a positive integer$"),
        ({"version": "1"}, "^header version '1' is not a positive integer$"),
        ({"version": True}, "^header version True is not a positive integer$"),
        ({"version": None}, "^header version None is not a positive integer$"),
        ({"recorded": "2026-11-25T06:45:05Z"}, "^not a timestamp of the form"),
        ({"recorded": "2026-11-25T06:45:05.123456+00:00"}, "^not a timestamp of the form"),
        ({"recorded": "2026-02-30T06:45:05.123456Z"}, "^not a valid date and time"),
        ({"recorded": None}, "^not a timestamp of the form"),
        ({"subjects": [BOB, ALICE]}, "^header subjects must be distinct and in ascending order$"),
        ({"subjects": [ALICE, ALICE]}, "^header subjects must be distinct and in ascending order"),
        (
            {"subjects": ["patient:b", "patient:aa"], "key": "patient:b" + SUFFIX},
            "^header subjects must be distinct and in ascending order$",
        ),
        (
            {"subjects": ["practice"], "key": "practice" + SUFFIX},
            "^header subjects must be a list of pat",
        ),
        ({"subjects": ["patient:ABC"], "key": "patient:ABC"}, "^header subjects must be a list"),
        ({"subjects": ["patient:"], "key": "patient:"}, "^header subjects must be a list"),
        ({"subjects": ["patient:" + "a" * 65]}, "^header subjects must be a list"),
        ({"subjects": ["clinic:1"], "key": "clinic:1"}, "^header subjects must be a list"),
        ({"subjects": [ALICE.encode()]}, "^header subjects must be a list"),
        ({"subjects": ALICE}, "^header subjects must be a list"),
        ({"subjects": None}, "^header subjects must be a list"),
        ({"key": "patient:zzz" + SUFFIX}, f"^{NOT_OWNED}$"),
        ({"key": "practice:x" + SUFFIX}, f"^{NOT_OWNED}$"),
        ({"key": b"practice" + SUFFIX.encode()}, f"^{NOT_OWNED}$"),
        ({"key": ALICE + SUFFIX, "subjects": [BOB]}, f"^{NOT_OWNED}$"),
        ({"key": ALICE}, f"^{NOT_OWNED}$"),  # no key suffix
        ({"key": ALICE + SUFFIX.upper()}, f"^{NOT_OWNED}$"),  # upper-case hex
        ({"key": ALICE + SUFFIX + "0"}, f"^{NOT_OWNED}$"),  # 33 digits
        ({"key": ALICE + SUFFIX[:-1]}, f"^{NOT_OWNED}$"),  # 31 digits
        ({"commitment": COMMITMENT[:31]}, "^header commitment must be 32 bytes$"),
        ({"commitment": COMMITMENT + b"\x00"}, "^header commitment must be 32 bytes$"),
        ({"commitment": COMMITMENT.hex()}, "^header commitment must be 32 bytes$"),
        ({"commitment": None}, "^header commitment must be 32 bytes$"),
        ({"sealed": SEALED[:31]}, "^header sealed must be 32 bytes$"),
        ({"sealed": SEALED.hex()}, "^header sealed must be 32 bytes$"),
        ({"actor": 5}, "^header actor must be text or nil$"),
        ({"actor": BOB.encode()}, "^header actor must be text or nil$"),
        ({"session": b"session-1"}, "^header session must be text or nil$"),
        ({"original": 1764053105}, "^header original must be text or nil$"),
    ],
)
def test_a_malformed_header_field_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        parse_header(header(**changes))


def test_a_float_cannot_hide_in_a_header() -> None:
    # msgpack repacks 1.0 as the same float64, so only the type check can catch it.
    fields = header_fields()
    fields["version"] = 1.0
    data = msgpack.packb(fields, use_bin_type=True)
    with pytest.raises(MalformedInput, match=r"^header version 1.0 is not a positive integer$"):
        parse_header(data)


# --- stored records -------------------------------------------------------------------------------


def test_a_stored_record_splits_into_header_and_sealed_payload() -> None:
    sealed = b"\x00" * 12 + b"ciphertext and tag"
    assert split_record(encode({"header": header(), "sealed": sealed})) == (header(), sealed)


@pytest.mark.parametrize(
    ("record", "cls", "message"),
    [
        ({"header": "text", "sealed": b"s"}, MalformedInput, "^stored record's header and sealed"),
        ({"header": b"h", "sealed": None}, MalformedInput, "^stored record's header and sealed"),
        ({"header": b"h"}, MalformedInput, "^stored record does not have exactly the keys header"),
        (
            {"header": b"h", "sealed": b"s", "salt": b"x"},
            MalformedInput,
            "^stored record does not have exactly the keys header, sealed$",
        ),
        ([b"h", b"s"], MalformedInput, "^stored record does not have exactly the keys"),
    ],
)
def test_a_malformed_stored_record_is_refused(
    record: Any, cls: type[Exception], message: str
) -> None:
    with pytest.raises(cls, match=message):
        split_record(encode(record))


def test_a_stored_record_in_a_wider_map_header_is_not_canonical() -> None:
    data = encode({"header": b"h", "sealed": b"s"})
    with pytest.raises(NotCanonical, match=r"^stored record: bytes are not the canonical"):
        split_record(b"\xde\x00\x02" + data[1:])


def test_a_stored_record_is_bytes() -> None:
    with pytest.raises(MalformedInput, match=r"^stored record: expected bytes, got memoryview$"):
        split_record(memoryview(encode({"header": b"h", "sealed": b"s"})))  # type: ignore[arg-type]


# --- leaves ---------------------------------------------------------------------------------


def test_leaf_bytes_are_the_canonical_leaf_map_of_section_5() -> None:
    links = [(ALICE, 3, 17), (BOB, 1, None)]
    data = leaf_bytes(DIGEST, links)
    assert data == encode({"event": DIGEST, "links": [[ALICE, 3, 17], [BOB, 1, None]]})
    assert parse_leaf(data) == Leaf(event=DIGEST, links=((ALICE, 3, 17), (BOB, 1, None)))


def test_a_leaf_with_no_subjects_has_no_links() -> None:
    assert parse_leaf(leaf_bytes(DIGEST, [])) == Leaf(event=DIGEST, links=())


def test_head_bytes_are_the_canonical_array_of_section_7() -> None:
    assert head_bytes(ALICE, 4, 2**40) == encode([ALICE, 4, 2**40])


LINKS_MESSAGE = r"^leaf links must be \[subject, seq >= 1, position or nil\]$"


@pytest.mark.parametrize(
    "links",
    [
        None,
        {ALICE: [1, None]},
        [ALICE, 1, None],  # one link, not a list of links
        [[ALICE, 1]],
        [[ALICE, 1, None, 0]],
        [[ALICE.encode(), 1, None]],
        [[None, 1, None]],
        [[ALICE, 0, None]],  # seq starts at 1
        [[ALICE, -1, None]],
        [[ALICE, "1", None]],
        [[ALICE, True, None]],
        [[ALICE, None, None]],
        [[ALICE, 2, -1]],
        [[ALICE, 2, "0"]],
        [[ALICE, 2, False]],
        [[ALICE, 2, b"\x00"]],
        [[ALICE, 1, None], "x"],
        [{"subject": ALICE, "seq": 1, "prev": None}],
    ],
)
def test_malformed_leaf_links_are_refused(links: Any) -> None:
    with pytest.raises(MalformedInput, match=LINKS_MESSAGE):
        parse_leaf(encode({"event": DIGEST, "links": links}))


@pytest.mark.parametrize("event", [DIGEST[:31], DIGEST + b"\x00", DIGEST.hex(), None, b""])
def test_a_leaf_event_that_is_not_a_32_byte_digest_is_refused(event: Any) -> None:
    with pytest.raises(MalformedInput, match=r"^leaf event must be a 32-byte digest$"):
        parse_leaf(encode({"event": event, "links": []}))


@pytest.mark.parametrize(
    "leaf",
    [
        {"event": DIGEST},
        {"links": []},
        {"event": DIGEST, "links": [], "extra": 1},
        [DIGEST, []],
    ],
)
def test_a_leaf_of_another_shape_is_refused(leaf: Any) -> None:
    with pytest.raises(MalformedInput, match=r"^leaf does not have exactly the keys event, links$"):
        parse_leaf(encode(leaf))


def test_a_leaf_with_unsorted_keys_is_refused() -> None:
    data = msgpack.packb({"links": [], "event": DIGEST}, use_bin_type=True)
    with pytest.raises(MalformedInput, match=r"^leaf does not have exactly the keys event, links$"):
        parse_leaf(data)


def test_a_leaf_with_a_non_minimal_integer_is_not_canonical() -> None:
    data = leaf_bytes(DIGEST, [(ALICE, 5, 7)])
    wide = data.replace(b"\x05\x07", b"\x05\xcc\x07")
    assert wide != data
    with pytest.raises(NotCanonical, match=r"^leaf: bytes are not the canonical encoding"):
        parse_leaf(wide)
