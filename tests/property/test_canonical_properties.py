"""The canonical msgpack profile (LEDGER_FORMAT.md §2) holds for every allowed value.

Values are drawn from the whole allowed space: nil, booleans, integers at every msgpack width
boundary, text (with non-ASCII characters, at the str header boundaries), bytes, arrays, tuples
and maps with text keys, nested. Every other encoding of the same value is built by hand and
must be refused.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgpack
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from verify.canonical import EncodeError, decode, encode, format_timestamp, parse_timestamp
from verify.errors import MalformedInput, NotCanonical

SETTINGS = settings(max_examples=100, deadline=None)
FEW = settings(max_examples=60, deadline=None)

NON_MINIMAL = "bytes are not the canonical encoding of their value"
INT_MIN, INT_MAX = -(2**63), 2**64 - 1

# Every integer at, just below and just above a boundary between two encodings.
INT_BOUNDARIES = sorted(
    {
        b + d
        for b in (0, 2**7, 2**8, 2**16, 2**32, 2**63, 2**64, -32, -(2**7), -(2**15), -(2**31))
        for d in (-1, 0, 1)
    }
    | {INT_MIN, INT_MIN + 1}
)
INT_BOUNDARIES = [n for n in INT_BOUNDARIES if INT_MIN <= n <= INT_MAX]
# Byte lengths at the fixstr/str 8/str 16 (and bin 8/bin 16) boundaries.
LENGTHS = [0, 1, 30, 31, 32, 33, 254, 255, 256, 257, 65535, 65536]

ints = st.one_of(st.sampled_from(INT_BOUNDARIES), st.integers(INT_MIN, INT_MAX))


def text_of_length(length: int, char: str) -> str:
    """Text of exactly ``length`` UTF-8 bytes, made of ``char`` and ASCII padding."""
    count, pad = divmod(length, len(char.encode()))
    return char * count + "a" * pad


texts = st.one_of(
    st.text(max_size=20),
    st.builds(text_of_length, st.sampled_from(LENGTHS), st.sampled_from(["a", "é", "€", "😀"])),
)
binaries = st.one_of(
    st.binary(max_size=20),
    st.builds(lambda n, b: bytes([b]) * n, st.sampled_from(LENGTHS), st.integers(0, 255)),
)
keys = st.text(max_size=8)  # including "" and non-ASCII keys
scalars = st.one_of(st.none(), st.booleans(), ints, texts, binaries)


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=5).map(tuple),
        st.dictionaries(keys, children, max_size=5),
    )


values = st.recursive(scalars, containers, max_leaves=12)

# Smaller values for the checks that walk every byte of the encoding.
small_scalars = st.one_of(
    st.none(), st.booleans(), ints, st.text(max_size=40), st.binary(max_size=40)
)
small_values = st.recursive(small_scalars, containers, max_leaves=8)
maps = st.dictionaries(keys, small_values, min_size=2, max_size=6)


def as_decoded(value: Any) -> Any:
    """What decoding gives back for ``value``: tuples become lists."""
    if type(value) in (list, tuple):
        return [as_decoded(item) for item in value]
    if type(value) is dict:
        return {key: as_decoded(item) for key, item in value.items()}
    return value


def assert_same(got: Any, want: Any) -> None:
    """Equal with the same types throughout (``True == 1`` and ``1 == 1.0`` do not count)."""
    assert type(got) is type(want), (got, want)
    if type(want) is list:
        assert len(got) == len(want)
        for a, b in zip(got, want, strict=True):
            assert_same(a, b)
    elif type(want) is dict:
        assert set(got) == set(want)
        for key in want:
            assert_same(got[key], want[key])
    else:
        assert got == want


def map_key_orders(data: bytes) -> list[list[str]]:
    """The keys of every map in ``data``, in the order they were encoded (not re-sorted)."""
    orders: list[list[str]] = []

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        orders.append([key for key, _ in pairs])
        return dict(pairs)

    msgpack.unpackb(data, raw=False, object_pairs_hook=hook, strict_map_key=False)
    return orders


# --- round trips --------------------------------------------------------------------------------


@SETTINGS
@given(values)
def test_decoding_an_encoding_gives_the_value_back_with_tuples_as_lists(value: Any) -> None:
    assert_same(decode(encode(value)), as_decoded(value))


@SETTINGS
@given(values)
def test_encoding_the_decoded_value_gives_the_same_bytes(value: Any) -> None:
    data = encode(value)
    assert encode(decode(data)) == data


@SETTINGS
@given(values)
def test_map_keys_are_encoded_in_ascending_order_of_their_encoded_bytes(value: Any) -> None:
    for order in map_key_orders(encode(value)):
        packed = [msgpack.packb(key, use_bin_type=True) for key in order]
        assert packed == sorted(packed)
        assert len(set(packed)) == len(packed)


@SETTINGS
@given(values)
def test_the_encoding_is_what_plain_msgpack_gives_for_the_key_sorted_value(value: Any) -> None:
    def key_sorted(v: Any) -> Any:
        if type(v) in (list, tuple):
            return [key_sorted(item) for item in v]
        if type(v) is dict:
            order = sorted(v, key=lambda k: msgpack.packb(k, use_bin_type=True))
            return {k: key_sorted(v[k]) for k in order}
        return v

    assert encode(value) == msgpack.packb(key_sorted(value), use_bin_type=True)


# --- the smallest header, and no other -----------------------------------------------------------


def int_encodings(n: int) -> list[bytes]:
    """Every msgpack encoding of the integer ``n``, canonical or not."""
    found = []
    if 0 <= n <= 127:
        found.append(bytes([n]))
    if -32 <= n < 0:
        found.append(struct.pack(">b", n))
    for code, fmt, lo, hi in [
        (0xCC, ">B", 0, 2**8),
        (0xCD, ">H", 0, 2**16),
        (0xCE, ">I", 0, 2**32),
        (0xCF, ">Q", 0, 2**64),
        (0xD0, ">b", -(2**7), 2**7),
        (0xD1, ">h", -(2**15), 2**15),
        (0xD2, ">i", -(2**31), 2**31),
        (0xD3, ">q", -(2**63), 2**63),
    ]:
        if lo <= n < hi:
            found.append(bytes([code]) + struct.pack(fmt, n))
    return found


def spec_int_encoding(n: int) -> bytes:
    """The one encoding the §2 table gives: fixint, else the first type that holds ``n``."""
    if 0 <= n <= 127 or -32 <= n < 0:
        return struct.pack(">b" if n < 0 else ">B", n)
    options = (
        [(0xCC, ">B", 2**8), (0xCD, ">H", 2**16), (0xCE, ">I", 2**32), (0xCF, ">Q", 2**64)]
        if n > 0
        else [(0xD0, ">b", 2**7), (0xD1, ">h", 2**15), (0xD2, ">i", 2**31), (0xD3, ">q", 2**63)]
    )
    code, fmt, _ = next(o for o in options if -o[2] <= n < o[2])
    return bytes([code]) + struct.pack(fmt, n)


def sized_encodings(fix: int | None, fix_max: int, wide: list[tuple[int, str]], n: int) -> list:
    """Every header for a length ``n``: the fix form (if any), then each wider form."""
    found = []
    if fix is not None and n <= fix_max:
        found.append(bytes([fix | n]))
    for code, fmt in wide:
        if n < 2 ** (8 * struct.calcsize(fmt)):
            found.append(bytes([code]) + struct.pack(fmt, n))
    return found


def str_headers(n: int) -> list[bytes]:
    return sized_encodings(0xA0, 31, [(0xD9, ">B"), (0xDA, ">H"), (0xDB, ">I")], n)


def bin_headers(n: int) -> list[bytes]:
    return sized_encodings(None, 0, [(0xC4, ">B"), (0xC5, ">H"), (0xC6, ">I")], n)


def array_headers(n: int) -> list[bytes]:
    return sized_encodings(0x90, 15, [(0xDC, ">H"), (0xDD, ">I")], n)


def map_headers(n: int) -> list[bytes]:
    return sized_encodings(0x80, 15, [(0xDE, ">H"), (0xDF, ">I")], n)


def assert_only_the_first_is_canonical(value: Any, encodings: list[bytes]) -> None:
    """``encodings`` are all encodings of ``value``, smallest header first."""
    assert encode(value) == encodings[0]
    for other in encodings[1:]:
        assert_same(msgpack.unpackb(other, raw=False), as_decoded(value))  # built right
        with pytest.raises(NotCanonical, match=NON_MINIMAL):
            decode(other)


@SETTINGS
@given(ints)
def test_an_integer_has_exactly_one_encoding_the_one_the_table_gives(n: int) -> None:
    encodings = int_encodings(n)
    assert encode(n) == spec_int_encoding(n)
    assert decode(spec_int_encoding(n)) == n
    for other in encodings:
        if other != spec_int_encoding(n):
            assert msgpack.unpackb(other) == n
            with pytest.raises(NotCanonical, match=NON_MINIMAL):
                decode(other)


@SETTINGS
@given(texts)
def test_text_has_exactly_one_header_the_smallest(text: str) -> None:
    raw = text.encode()
    assert_only_the_first_is_canonical(text, [h + raw for h in str_headers(len(raw))])


@SETTINGS
@given(binaries)
def test_bytes_have_exactly_one_header_the_smallest(data: bytes) -> None:
    assert_only_the_first_is_canonical(data, [h + data for h in bin_headers(len(data))])


@FEW
@given(st.lists(small_values, max_size=20))
def test_an_array_has_exactly_one_header_the_smallest(items: list[Any]) -> None:
    body = b"".join(encode(item) for item in items)
    assert_only_the_first_is_canonical(items, [h + body for h in array_headers(len(items))])


@FEW
@given(st.dictionaries(keys, small_scalars, max_size=20))
def test_a_map_has_exactly_one_header_the_smallest(value: dict[str, Any]) -> None:
    body = encode(value)[len(map_headers(len(value))[0]) :]
    assert_only_the_first_is_canonical(value, [h + body for h in map_headers(len(value))])


# --- other encodings of the same value ------------------------------------------------------------


@FEW
@given(maps, st.randoms(use_true_random=False))
def test_a_map_packed_with_its_keys_in_another_order_is_not_canonical(
    value: dict[str, Any], rng: Any
) -> None:
    canonical_order = list(map_key_orders(encode(value))[-1])
    order = canonical_order[:]
    rng.shuffle(order)
    assume(order != canonical_order)
    data = msgpack.packb({key: value[key] for key in order}, use_bin_type=True)
    assert_same(msgpack.unpackb(data, raw=False), as_decoded(value))
    with pytest.raises(NotCanonical, match=NON_MINIMAL):
        decode(data)


@FEW
@given(st.dictionaries(keys, small_scalars, min_size=1, max_size=8), st.data())
def test_a_map_with_a_key_repeated_is_not_canonical(value: dict[str, Any], data: Any) -> None:
    # Hand-built: the canonical pairs, with one pair's key given again (any value) right after it.
    pairs = sorted((encode(key), encode(item)) for key, item in value.items())
    i = data.draw(st.integers(0, len(pairs) - 1), label="repeated")
    again = encode(data.draw(small_values, label="second value"))
    body = [*pairs[: i + 1], (pairs[i][0], again), *pairs[i + 1 :]]
    encoded = map_headers(len(body))[0] + b"".join(k + v for k, v in body)
    with pytest.raises(NotCanonical, match=NON_MINIMAL):
        decode(encoded)


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True), st.booleans())
def test_a_float_is_not_canonical_in_either_width(number: float, single: bool) -> None:
    data = (
        b"\xca" + struct.pack(">f", number)
        if single and (abs(number) < 3e38 or number != number)
        else b"\xcb" + struct.pack(">d", number)
    )
    with pytest.raises(NotCanonical, match=r"floats are not allowed"):
        decode(data)
    with pytest.raises(NotCanonical, match=r"floats are not allowed"):
        decode(b"\x81\xa1x" + data)


@SETTINGS
@given(st.integers(-128, 127), st.binary(max_size=20))
def test_an_extension_value_is_not_canonical(code: int, payload: bytes) -> None:
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
    type_byte = struct.pack(">b", code)
    forms = [b"\xc7" + bytes([len(payload)]) + type_byte + payload]
    forms.append(b"\xc8" + struct.pack(">H", len(payload)) + type_byte + payload)
    forms.append(b"\xc9" + struct.pack(">I", len(payload)) + type_byte + payload)
    if len(payload) in fixed:
        forms.append(bytes([fixed[len(payload)]]) + type_byte + payload)
    for data in forms:
        # Code -1 is the msgpack timestamp, which msgpack parses itself before any ext hook.
        # A valid timestamp is refused on re-encoding (NotCanonical), a bad one by msgpack
        # (MalformedInput); test_the_msgpack_timestamp_extension_is_not_canonical pins the first.
        if code == -1:
            message = "^(Timestamp has no canonical encoding$|not msgpack: )"
            with pytest.raises(MalformedInput, match=message):
                decode(data)
        else:
            with pytest.raises(NotCanonical, match=f"^extension type {code} is not allowed$"):
                decode(data)


@SETTINGS
@given(st.integers(0, 2**32 - 1), st.integers(0, 999_999_999), st.integers(0, 2))
def test_the_msgpack_timestamp_extension_is_not_canonical(
    seconds: int, nanoseconds: int, width: int
) -> None:
    if width == 0:
        data = b"\xd6\xff" + struct.pack(">I", seconds)
    elif width == 1:
        data = b"\xd7\xff" + struct.pack(">Q", nanoseconds << 34 | seconds)
    else:
        data = b"\xc7\x0c\xff" + struct.pack(">Iq", nanoseconds, seconds)
    with pytest.raises(NotCanonical, match=r"Timestamp has no canonical encoding"):
        decode(data)


@SETTINGS
@given(values, st.binary(min_size=1, max_size=10))
def test_trailing_bytes_are_not_canonical(value: Any, extra: bytes) -> None:
    with pytest.raises(NotCanonical, match=rf"^{len(extra)} trailing bytes after the value$"):
        decode(encode(value) + extra)


@FEW
@given(small_values)
def test_every_proper_prefix_of_an_encoding_is_refused(value: Any) -> None:
    data = encode(value)
    for end in range(len(data)):
        with pytest.raises(MalformedInput, match=r"^not msgpack: ") as info:
            decode(data[:end])
        assert type(info.value) is MalformedInput


@SETTINGS
@given(texts)
def test_text_and_the_same_bytes_are_different_values(text: str) -> None:
    raw = text.encode()
    assert encode(text) != encode(raw)
    assert_same(decode(encode(raw)), raw)
    # The text's str header swapped for a bin header: a different value, never the text.
    swapped = bin_headers(len(raw))[0] + raw
    assert_same(decode(swapped), raw)
    assert_same(decode(encode({"k": raw})), {"k": raw})
    assert decode(encode({"k": raw})) != {"k": text}


# --- the encoder refuses ---------------------------------------------------------------------


@SETTINGS
@given(st.floats(), st.sampled_from([lambda f: f, lambda f: [f], lambda f: {"a": {"b": f}}]))
def test_the_encoder_refuses_floats_anywhere(number: float, wrap: Callable[[float], Any]) -> None:
    with pytest.raises(EncodeError, match=r"floats are not allowed"):
        encode(wrap(number))


@SETTINGS
@given(
    st.one_of(st.integers(max_value=INT_MIN - 1), st.integers(min_value=INT_MAX + 1)),
    st.booleans(),
)
def test_the_encoder_refuses_integers_outside_64_bits(n: int, nested: bool) -> None:
    with pytest.raises(EncodeError, match=rf"integer {n} is outside the 64-bit range"):
        encode({"n": [n]} if nested else n)


@SETTINGS
@given(st.one_of(st.integers(), st.binary(), st.none(), st.booleans(), st.tuples(st.text())))
def test_the_encoder_refuses_non_text_map_keys(key: Any) -> None:
    with pytest.raises(EncodeError, match=rf"map keys must be text, not {type(key).__name__}"):
        encode({"ok": 1, key: 2})


@SETTINGS
@given(
    st.one_of(
        st.decimals(allow_nan=False),
        st.uuids(),
        st.dates(),
        st.frozensets(st.integers(), max_size=2),
        st.builds(bytearray, st.binary(max_size=4)),
        st.complex_numbers(),
    )
)
def test_the_encoder_refuses_types_outside_the_profile(value: Any) -> None:
    with pytest.raises(EncodeError, match=rf"^{type(value).__name__} has no canonical encoding$"):
        encode([value])


# --- timestamps -------------------------------------------------------------------------------

offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-(24 * 60 - 1), 24 * 60 - 1)
)
zones = st.one_of(st.just(UTC), offsets, st.timezones())
aware = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=zones)


@SETTINGS
@given(aware)
def test_a_formatted_timestamp_parses_back_to_the_same_instant(moment: datetime) -> None:
    text = format_timestamp(moment)
    parsed = parse_timestamp(text)
    # Compared in UTC: a wall time in a zone's gap or fold never equals another zone's (PEP 495).
    assert parsed == moment.astimezone(UTC)
    assert parsed.tzinfo is UTC
    assert format_timestamp(parsed) == text


@SETTINGS
@given(aware)
def test_a_timestamp_is_utc_with_six_digits_and_z(moment: datetime) -> None:
    u = moment.astimezone(UTC)
    assert format_timestamp(moment) == (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond:06d}Z"
    )


@SETTINGS
@given(st.datetimes(timezones=st.none()))
def test_a_naive_datetime_is_refused(moment: datetime) -> None:
    with pytest.raises(EncodeError, match=r"^timestamps must be timezone-aware$"):
        format_timestamp(moment)


def other_spellings(text: str) -> list[str]:
    """The same instant spelled every other way ISO 8601 and RFC 3339 allow."""
    body = text[:-1]  # YYYY-MM-DDTHH:MM:SS.ffffff
    whole, fraction = body.split(".")
    return [
        whole + "Z",  # no fraction
        f"{whole}.{fraction[:3]}Z",  # three digits (when they are all it needs, or not)
        f"{body}0Z",  # seven digits
        body + "+00:00",
        body + "-00:00",
        body + "z",
        body,
        body.replace("T", " ") + "Z",
        body.replace("T", "t") + "Z",
        f"{whole},{fraction}Z",
        body.replace("-", "").replace(":", "") + "Z",
        text + "\n",
        " " + text,
    ]


@SETTINGS
@given(aware)
def test_every_other_spelling_of_the_instant_is_refused(moment: datetime) -> None:
    for spelling in other_spellings(format_timestamp(moment)):
        with pytest.raises(MalformedInput, match=r"^not a timestamp of the form"):
            parse_timestamp(spelling)
