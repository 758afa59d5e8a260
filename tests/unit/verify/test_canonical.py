"""The canonical msgpack profile (LEDGER_FORMAT.md §2), by example. Messages are pinned.

Each non-canonical input is built by hand, byte by byte, so that a decoder which trusted
msgpack's own leniency would let it through.
"""

from __future__ import annotations

import enum
import struct
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from uuid import UUID

import msgpack
import pytest

from verify.canonical import (
    EncodeError,
    decode,
    decode_fixed_map,
    encode,
    format_timestamp,
    key_order,
    pack_ordered,
    parse_timestamp,
)
from verify.errors import MalformedInput, NotCanonical

NON_MINIMAL = "bytes are not the canonical encoding of their value"
# msgpack says "incomplete input", or that a header claims more items than bytes remain.
INCOMPLETE = "^not msgpack: (Unpack failed: incomplete input|[0-9]+ exceeds max_)"


def _raises_exactly(cls: type[Exception], match: str, data: bytes) -> None:
    """``decode(data)`` raises ``cls`` itself (not a subclass) with a message matching ``match``."""
    with pytest.raises(cls, match=match) as info:
        decode(data)
    assert type(info.value) is cls


# --- the encodings of the §2 table -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (None, "c0"),
        (False, "c2"),
        (True, "c3"),
        (0, "00"),
        (127, "7f"),
        (128, "cc80"),
        (255, "ccff"),
        (256, "cd0100"),
        (65535, "cdffff"),
        (65536, "ce00010000"),
        (2**32 - 1, "ceffffffff"),
        (2**32, "cf0000000100000000"),
        (2**64 - 1, "cfffffffffffffffff"),
        (-1, "ff"),
        (-32, "e0"),
        (-33, "d0df"),
        (-128, "d080"),
        (-129, "d1ff7f"),
        (-(2**15), "d18000"),
        (-(2**15) - 1, "d2ffff7fff"),
        (-(2**31), "d280000000"),
        (-(2**31) - 1, "d3ffffffff7fffffff"),
        (-(2**63), "d38000000000000000"),
        ("", "a0"),
        ("a" * 31, "bf" + "61" * 31),
        ("a" * 32, "d920" + "61" * 32),
        ("é", "a2c3a9"),
        (b"", "c400"),
        (b"\x00\xff", "c40200ff"),
        ([], "90"),
        ([1, [2]], "920191" + "02"),
        ({}, "80"),
        ({"b": 1, "a": 2}, "82a16102a16201"),
    ],
)
def test_each_value_has_the_encoding_the_table_gives(value: object, encoded: str) -> None:
    assert encode(value).hex() == encoded
    assert decode(bytes.fromhex(encoded)) == value


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (31, "bf"),
        (32, "d920"),
        (255, "d9ff"),
        (256, "da0100"),
        (65535, "daffff"),
        (65536, "db00010000"),
    ],
)
def test_text_takes_the_smallest_header_that_holds_its_byte_length(
    length: int, header: str
) -> None:
    # Two-byte characters: the header counts bytes, not characters.
    text = "é" * (length // 2) + "a" * (length % 2)
    encoded = encode(text)
    assert encoded == bytes.fromhex(header) + text.encode()
    assert decode(encoded) == text


@pytest.mark.parametrize(
    ("length", "header"),
    [(0, "c400"), (255, "c4ff"), (256, "c50100"), (65535, "c5ffff"), (65536, "c600010000")],
)
def test_bytes_take_the_smallest_bin_header_that_holds_their_length(
    length: int, header: str
) -> None:
    data = bytes(range(256)) * (length // 256) + bytes(length % 256)
    assert encode(data) == bytes.fromhex(header) + data
    assert decode(bytes.fromhex(header) + data) == data


@pytest.mark.parametrize(
    ("count", "header"),
    [(15, "9f"), (16, "dc0010"), (65535, "dcffff"), (65536, "dd00010000")],
)
def test_arrays_take_the_smallest_header_that_holds_their_length(count: int, header: str) -> None:
    encoded = encode([None] * count)
    assert encoded == bytes.fromhex(header) + b"\xc0" * count
    assert decode(encoded) == [None] * count


@pytest.mark.parametrize(
    ("count", "header"),
    [(15, "8f"), (16, "de0010"), (65535, "deffff"), (65536, "df00010000")],
)
def test_maps_take_the_smallest_header_that_holds_their_size(count: int, header: str) -> None:
    value = {f"{i:05d}": None for i in range(count)}
    encoded = encode(value)
    assert encoded.startswith(bytes.fromhex(header))
    assert decode(encoded) == value


# --- map keys ----------------------------------------------------------------------------------


def test_map_keys_sort_by_encoded_bytes_so_shorter_keys_come_first() -> None:
    assert list(decode(encode({"actor": 1, "key": 2, "id": 3}))) == ["id", "key", "actor"]
    assert encode({"actor": 1, "key": 2, "id": 3}) == b"\x83\xa2id\x03\xa3key\x02\xa5actor\x01"


def test_key_order_agrees_with_the_encoded_bytes_of_the_key() -> None:
    keys = ["", "z", "aa", "é", "zz", "€", "a" * 31, "a" * 32, "b" * 31, "😀", "ab"]
    assert sorted(keys, key=key_order) == sorted(keys, key=msgpack.packb)


def test_a_nested_map_is_sorted_too() -> None:
    assert encode({"m": {"bb": 1, "a": 2}}) == b"\x81\xa1m\x82\xa1a\x02\xa2bb\x01"


def test_unsorted_map_keys_are_not_canonical() -> None:
    _raises_exactly(NotCanonical, NON_MINIMAL, b"\x82\xa1b\x01\xa1a\x02")


def test_unsorted_keys_of_a_nested_map_are_not_canonical() -> None:
    _raises_exactly(NotCanonical, NON_MINIMAL, b"\x91\x82\xa2bb\x01\xa1a\x02")


def test_duplicate_map_keys_are_not_canonical() -> None:
    _raises_exactly(NotCanonical, NON_MINIMAL, b"\x82\xa1a\x01\xa1a\x01")
    _raises_exactly(NotCanonical, NON_MINIMAL, b"\x82\xa1a\x01\xa1a\x02")


def test_a_bin_map_key_is_not_canonical() -> None:
    _raises_exactly(NotCanonical, "map keys must be text, not bytes", b"\x81\xc4\x01a\x01")


def test_an_integer_map_key_is_malformed() -> None:
    _raises_exactly(MalformedInput, "int is not allowed for map key", b"\x81\x01\x02")


# --- oversized headers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded",
    [
        "cc05",  # uint 8 for a fixint
        "cd0005",  # uint 16 for a fixint
        "ce00000005",
        "cf0000000000000005",
        "d005",  # int 8 for a positive fixint
        "d0ff",  # int 8 for a negative fixint
        "cd00c8",  # uint 16 for a uint 8
        "d100c8",  # int 16 for a positive number: uint 8 is the only form
        "d37fffffffffffffff",  # int 64 for 2**63 - 1: uint 64 is the only form
        "d1ff80",  # int 16 for -128
        "d2ffffff80",
        "d3ffffffffffffff80",
        "d903616263",  # str 8 for a fixstr
        "da0003616263",
        "db00000003616263",
        "c50003616263",  # bin 16 for a bin 8
        "c600000003616263",
        "dc000101",  # array 16 for a fixarray
        "dd0000000101",
        "de0001a16101",  # map 16 for a fixmap
        "df00000001a16101",
    ],
)
def test_a_header_wider_than_needed_is_not_canonical(encoded: str) -> None:
    data = bytes.fromhex(encoded)
    msgpack.unpackb(data)  # it is valid msgpack, just not the one canonical form
    _raises_exactly(NotCanonical, NON_MINIMAL, data)


# --- types outside the profile -----------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"\xca" + struct.pack(">f", 1.5),
        b"\xcb" + struct.pack(">d", 1.5),
        b"\xcb" + struct.pack(">d", 1.0),  # a whole number is still a float
        b"\xcb" + struct.pack(">d", float("nan")),
        b"\x91\xcb" + struct.pack(">d", 0.0),  # hidden in an array
        b"\x81\xa1a\xca" + struct.pack(">f", 2.0),  # or in a map
    ],
)
def test_floats_are_not_canonical(data: bytes) -> None:
    _raises_exactly(NotCanonical, "floats are not allowed", data)


@pytest.mark.parametrize(
    "encoded",
    [
        "d40501",  # fixext 1
        "d5050102",  # fixext 2
        "d60501020304",  # fixext 4
        "d7050102030405060708",  # fixext 8
        "d805" + "00" * 16,  # fixext 16
        "c7000c",  # ext 8, empty
        "c70305010203",  # ext 8
        "c8000305010203",  # ext 16
        "c90000000305010203",  # ext 32
        "91d40501",  # hidden in an array
    ],
)
def test_extension_types_are_not_canonical(encoded: str) -> None:
    _raises_exactly(NotCanonical, "extension type (5|12) is not allowed", bytes.fromhex(encoded))


@pytest.mark.parametrize(
    "encoded",
    [
        "d6ff" + "00000001",  # timestamp 32
        "d7ff" + "0000000000000001",  # timestamp 64
        "c70cff" + "000000000000000000000001",  # timestamp 96
    ],
)
def test_the_msgpack_timestamp_extension_is_not_canonical(encoded: str) -> None:
    # msgpack turns ext -1 into a Timestamp before any ext hook sees it; re-encoding refuses it.
    _raises_exactly(NotCanonical, "Timestamp has no canonical encoding", bytes.fromhex(encoded))


def test_the_never_used_byte_c1_is_malformed() -> None:
    _raises_exactly(MalformedInput, "not msgpack", b"\xc1")


def test_invalid_utf8_text_is_malformed() -> None:
    _raises_exactly(MalformedInput, "not msgpack: 'utf-8' codec can't decode", b"\xa2\xff\xfe")


# --- one value, whole ---------------------------------------------------------------------------


@pytest.mark.parametrize(("extra", "count"), [(b"\x00", 1), (b"\xc0\xc0", 2), (b"\xc1", 1)])
def test_trailing_bytes_are_not_canonical(extra: bytes, count: int) -> None:
    _raises_exactly(NotCanonical, f"^{count} trailing bytes after the value$", encode([1]) + extra)


@pytest.mark.parametrize(
    "value",
    [2**64 - 1, -(2**63), "a" * 256, b"\x00" * 300, {"key": [1, "two", b"3"], "z": None}],
)
def test_every_proper_prefix_of_a_valid_encoding_is_malformed(value: object) -> None:
    data = encode(value)
    for end in range(len(data)):
        _raises_exactly(MalformedInput, INCOMPLETE, data[:end])


DEPTH = 1000  # within msgpack's own nesting limit (1024), beyond Python's recursion limit


def test_a_deeply_nested_input_is_malformed_not_a_crash() -> None:
    # 1001 bytes of valid, canonical msgpack: a verifier must answer with a VerificationError,
    # never let a RecursionError out of decode.
    with pytest.raises(MalformedInput, match="nested too deeply"):
        decode(b"\x91" * DEPTH + b"\xc0")


def test_the_encoder_refuses_a_value_nested_too_deeply_with_encode_error() -> None:
    value: list[object] = []
    for _ in range(DEPTH):
        value = [value]
    with pytest.raises(EncodeError, match="nested too deeply"):
        encode(value)


def test_only_bytes_are_decoded() -> None:
    with pytest.raises(MalformedInput, match=r"expected bytes, got bytearray"):
        decode(bytearray(b"\xc0"))  # type: ignore[arg-type]
    with pytest.raises(MalformedInput, match=r"expected bytes, got str"):
        decode("\xc0")  # type: ignore[arg-type]


# --- text and bytes are different values ---------------------------------------------------------


def test_text_and_bytes_with_the_same_content_are_different_values() -> None:
    assert encode("abc") == b"\xa3abc"
    assert encode(b"abc") == b"\xc4\x03abc"
    assert decode(b"\xa3abc") == "abc"
    assert decode(b"\xc4\x03abc") == b"abc"
    assert decode(encode({"a": "x"})) != decode(encode({"a": b"x"}))


def test_bin_given_where_a_header_expects_text_is_a_different_value() -> None:
    # The same map with the value's str header replaced by a bin header.
    text = encode({"stream": "x"})
    binary = text.replace(b"\xa1x", b"\xc4\x01x")
    assert decode(binary) == {"stream": b"x"}
    assert decode(binary) != decode(text)


# --- the encoder refuses what has no canonical form ---------------------------------------------


class Colour(enum.IntEnum):
    RED = 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "floats are not allowed"),
        (0.0, "floats are not allowed"),
        ([1, 2.0], "floats are not allowed"),
        ({"a": {"b": 1.0}}, "floats are not allowed"),
        ({1: "a"}, "map keys must be text, not int"),
        ({b"a": "a"}, "map keys must be text, not bytes"),
        ({None: "a"}, "map keys must be text, not NoneType"),
        ({("a",): 1}, "map keys must be text, not tuple"),
        (2**64, "integer 18446744073709551616 is outside the 64-bit range"),
        (-(2**63) - 1, "integer -9223372036854775809 is outside the 64-bit range"),
        ([2**70], "integer 1180591620717411303424 is outside"),
        (Decimal("5.2"), "Decimal has no canonical encoding"),
        (UUID(int=0), "UUID has no canonical encoding"),
        (datetime(2026, 1, 1, tzinfo=UTC), "datetime has no canonical encoding"),
        (bytearray(b"a"), "bytearray has no canonical encoding"),
        ({1, 2}, "set has no canonical encoding"),
        (Colour.RED, "Colour has no canonical encoding"),  # an int subclass is not an int
        (object(), "object has no canonical encoding"),
        ("\ud800", "text is not valid UTF-8"),
        ({"\udc00": 1}, "map key is not valid UTF-8 text"),
    ],
)
def test_the_encoder_refuses_values_outside_the_profile(value: object, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        encode(value)


def test_tuples_encode_as_arrays_and_decode_as_lists() -> None:
    assert encode((1, ("a", b"b"))) == encode([1, ["a", b"b"]])
    assert decode(encode((1, ("a",)))) == [1, ["a"]]


def test_pack_ordered_gives_the_canonical_bytes_for_maps_built_in_canonical_order() -> None:
    value = {"id": 1, "key": [None, True], "actor": {"a": b"x", "bb": "y"}}
    assert pack_ordered(value) == encode(value)


# --- decode_fixed_map ---------------------------------------------------------------------------


def test_a_fixed_map_with_its_keys_decodes() -> None:
    data = encode({"header": b"h", "sealed": b"s"})
    assert decode_fixed_map(data, ("header", "sealed"), "record") == {
        "header": b"h",
        "sealed": b"s",
    }


@pytest.mark.parametrize(
    ("data", "cls", "message"),
    [
        (encode({"header": b"h"}), MalformedInput, "^record does not have exactly the keys"),
        (encode([b"h", b"s"]), MalformedInput, "^record does not have exactly the keys"),
        (b"\x82\xa6sealed\xc0\xa6header\xc0", MalformedInput, "^record does not have exactly"),
        (b"\x83\xa6header\xc0\xa6sealed\xc0\xa6sealed\xc0", NotCanonical, "^record: bytes are not"),
        (b"\xde\x00\x02\xa6header\xc0\xa6sealed\xc0", NotCanonical, "^record: bytes are not"),
        (encode({"header": None, "sealed": None}) + b"\x00", NotCanonical, "^record: 1 trailing"),
        (b"\x82\xa6header\xc0\xa6sealed\xd4\x05\x00", NotCanonical, "^record: extension type 5"),
        (b"\x82\xa6header\xc0\xa6sealed", MalformedInput, "^record: not msgpack"),
        (
            b"\x82\xa6header\xc0\xa6sealed\xca" + struct.pack(">f", 1.0),
            NotCanonical,
            "^record: bytes are not",
        ),
    ],
)
def test_a_fixed_map_of_another_shape_is_refused(
    data: bytes, cls: type[Exception], message: str
) -> None:
    with pytest.raises(cls, match=message) as info:
        decode_fixed_map(data, ("header", "sealed"), "record")
    assert type(info.value) is cls


# --- timestamps ---------------------------------------------------------------------------------


def test_a_timestamp_is_utc_with_six_fractional_digits_and_z() -> None:
    moment = datetime(2026, 11, 25, 6, 45, 5, 123456, tzinfo=UTC)
    assert format_timestamp(moment) == "2026-11-25T06:45:05.123456Z"
    assert parse_timestamp("2026-11-25T06:45:05.123456Z") == moment


def test_a_timestamp_without_microseconds_still_has_six_digits() -> None:
    assert format_timestamp(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2026-01-02T03:04:05.000000Z"
    )


def test_a_timestamp_in_another_zone_is_converted_to_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2026, 11, 25, 1, 45, 5, 7, tzinfo=eastern)
    assert format_timestamp(moment) == "2026-11-25T06:45:05.000007Z"
    parsed = parse_timestamp(format_timestamp(moment))
    assert parsed == moment
    assert parsed.tzinfo is UTC


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(EncodeError, match=r"timestamps must be timezone-aware"):
        format_timestamp(datetime(2026, 11, 25, 6, 45, 5))


class NoOffset(tzinfo):
    """A zone that does not know its offset: Python counts such datetimes as naive."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> str:
        return "unknown"


def test_a_datetime_whose_zone_gives_no_offset_is_naive_and_refused() -> None:
    moment = datetime(2026, 11, 25, 6, 45, 5, tzinfo=NoOffset())
    assert moment.utcoffset() is None  # naive, by the datetime docs' definition
    with pytest.raises(EncodeError, match=r"^timestamps must be timezone-aware$"):
        format_timestamp(moment)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-25T06:45:05Z",  # no fraction
        "2026-11-25T06:45:05.123Z",  # three digits
        "2026-11-25T06:45:05.1234567Z",  # seven digits
        "2026-11-25T06:45:05.123456+00:00",  # an offset instead of Z
        "2026-11-25T06:45:05.123456",  # no zone at all
        "2026-11-25T06:45:05.123456z",  # lowercase z
        "2026-11-25t06:45:05.123456Z",  # lowercase t
        "2026-11-25 06:45:05.123456Z",  # space separator
        "2026-11-25T06:45:05,123456Z",  # comma decimal
        "20261125T064505.123456Z",  # basic format
        " 2026-11-25T06:45:05.123456Z",
        "2026-11-25T06:45:05.123456Z\n",
        "2026-11-25T06:45:05.123456ZZ",
        "+2026-11-25T06:45:05.123456Z",
        "",
    ],
)
def test_every_other_spelling_of_an_instant_is_refused(text: str) -> None:
    with pytest.raises(MalformedInput, match=r"not a timestamp of the form YYYY-MM-DDTHH:MM:SS"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30T06:45:05.123456Z",
        "2026-13-01T06:45:05.123456Z",
        "2026-11-25T24:00:00.000000Z",
        "2026-11-25T06:60:05.123456Z",
        "2016-12-31T23:59:60.000000Z",  # leap seconds have no datetime
        "٢٠٢٦-11-25T06:45:05.123456Z",  # digits, but not ASCII ones
    ],
)
def test_an_impossible_date_or_time_is_refused(text: str) -> None:
    with pytest.raises(MalformedInput, match=r"not a valid date and time"):
        parse_timestamp(text)


@pytest.mark.parametrize("value", [b"2026-11-25T06:45:05.123456Z", None, 0])
def test_only_text_is_a_timestamp(value: object) -> None:
    with pytest.raises(MalformedInput, match=r"not a timestamp of the form"):
        parse_timestamp(value)  # type: ignore[arg-type]
