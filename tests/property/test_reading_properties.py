"""Reading events back takes short paths; each must give what the full path gives.

``read_record`` parses a stored record's header by its fields' types only, falling back to
``split_record`` and ``parse_header`` for anything else; ``CanonicalTranscoder.decode`` undoes
the payload's tags as msgpack builds each map. Both are held here to an independent reading:
the strict parsers for headers, a two-step decode (plain msgpack, then a walk) for payloads.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.encoding import CanonicalTranscoder, read_record
from verify.canonical import encode, format_timestamp, parse_timestamp
from verify.errors import VerificationError
from verify.records import HEADER_KEYS, Header, parse_header, split_record

SETTINGS = settings(max_examples=200, deadline=None)
TRANSCODER = CanonicalTranscoder()

# -- payloads -----------------------------------------------------------------------------------

ZONES = [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.sampled_from(ZONES)
)
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.text(max_size=12),
    st.binary(max_size=12),
    st.uuids().map(lambda u: UUID(str(u))),
    st.decimals(allow_nan=False, allow_infinity=False, places=3),
    moments,
    st.dates(),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=20,
)


def _two_step(data: bytes) -> Any:
    """The payload as a plain msgpack value, then its tags undone by a walk from the top."""

    def walk(value: Any) -> Any:
        if type(value) is list:
            return [walk(v) for v in value]
        if type(value) is not dict:
            return value
        if set(value) == {"_type_", "_data_"}:
            tag, data = value["_type_"], value["_data_"]
            if tag == "tuple":
                return tuple(walk(v) for v in data)
            return {
                "uuid": UUID,
                "decimal": Decimal,
                "datetime": parse_timestamp,
                "date": date.fromisoformat,
            }[tag](data)
        return {k: walk(v) for k, v in value.items()}

    return walk(msgpack.unpackb(data, strict_map_key=True))


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (a tuple is not a list)."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


@SETTINGS
@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_a_payload_decodes_to_what_was_encoded_and_what_a_two_step_decode_gives(
    state: dict[str, Any],
) -> None:
    data = TRANSCODER.encode(state)
    decoded = TRANSCODER.decode(data)
    assert _same(decoded, _two_step(data))
    assert decoded == state
    assert TRANSCODER.encode(decoded) == data


@SETTINGS
@given(moments, st.sampled_from(ZONES), st.uuids())
def test_the_texts_made_once_are_the_texts_of_the_canonical_form(
    moment: datetime, zone: timezone, uuid: UUID
) -> None:
    for value in (moment, moment.astimezone(zone), uuid, UUID(str(uuid))):
        expected = msgpack.packb(
            {"_data_": format_timestamp(value) if isinstance(value, datetime) else str(value),
             "_type_": "datetime" if isinstance(value, datetime) else "uuid"}
        )  # fmt: skip
        assert TRANSCODER.encode(value) == expected


# -- headers ------------------------------------------------------------------------------------

SUBJECT = st.sampled_from(["patient:0001", "patient:0002", "user:07", "user:ab-12"])
text_or_nil = st.none() | st.text(max_size=10)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    subjects = sorted(set(draw(st.lists(SUBJECT, max_size=3))), key=str.encode)
    owner = draw(st.sampled_from(["practice", *subjects]))
    recorded = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 10**13))
    )
    return {
        "key": f"{owner}#{draw(st.binary(min_size=16, max_size=16)).hex()}",
        "type": draw(st.text(min_size=1, max_size=12)),
        "actor": draw(text_or_nil),
        "format": 1,
        "sealed": draw(st.binary(min_size=32, max_size=32)),
        "stream": str(draw(st.uuids())),
        "session": draw(text_or_nil),
        "version": draw(st.integers(1, 2**40)),
        "original": draw(text_or_nil),
        "recorded": recorded.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "subjects": subjects,
        "commitment": draw(st.binary(min_size=32, max_size=32)),
    }


def _record(header: dict[str, Any], sealed: bytes = b"sealed") -> bytes:
    return encode({"header": encode(header), "sealed": sealed})


@SETTINGS
@given(headers(), st.binary(max_size=40))
def test_a_well_formed_record_reads_as_the_strict_parsers_read_it(
    header: dict[str, Any], sealed: bytes
) -> None:
    state = _record(header, sealed)
    header_bytes, strict_sealed = split_record(state)
    assert read_record(state) == (parse_header(header_bytes), strict_sealed)


odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=5),
    st.binary(max_size=33),
    st.lists(st.one_of(st.text(max_size=14), st.integers(-(2**63), 2**64 - 1)), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(-(2**63), 2**64 - 1), max_size=1),
)


@SETTINGS
@given(headers(), st.sampled_from([*HEADER_KEYS, "extra"]), odd_values, st.booleans())
def test_a_changed_header_reads_as_the_strict_parsers_read_it_or_is_refused(
    header: dict[str, Any], field: str, value: Any, drop: bool
) -> None:
    """Whatever the change, the short path never gives a Header the full path would refuse
    for its types, and gives the full path's Header whenever the full path accepts."""
    if drop and field in header:
        del header[field]
    else:
        header[field] = value
    state = msgpack.packb({"header": msgpack.packb(header), "sealed": b"s"})
    try:
        strict = parse_header(split_record(state)[0])
    except VerificationError:
        strict = None
    try:
        short, _ = read_record(state)
    except VerificationError:
        assert strict is None
        return
    if strict is not None:
        assert short == strict
    _assert_types(short)


def _assert_types(header: Header) -> None:
    for name in ("type", "stream", "recorded", "key"):
        assert type(getattr(header, name)) is str
    assert type(header.version) is int
    assert type(header.commitment) is bytes and type(header.sealed) is bytes
    assert all(type(s) is str for s in header.subjects)
    for name in ("actor", "session", "original"):
        assert getattr(header, name) is None or type(getattr(header, name)) is str


@pytest.mark.parametrize(
    "state",
    [b"", b"\xc1", msgpack.packb([1, 2]), msgpack.packb({"header": b"\x80", "sealed": b""})],
)
def test_a_record_that_is_not_one_is_refused_with_the_full_paths_reason(state: bytes) -> None:
    with pytest.raises(VerificationError):
        read_record(state)
