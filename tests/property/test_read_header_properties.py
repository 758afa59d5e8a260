"""``read_header`` (the payload pass's quick read) accepts exactly what ``parse_header`` does.

It answers from a few C calls and a cache of (stream, key, subjects) found well formed, and
hands every doubt to ``parse_header``; if it ever accepted a header ``parse_header`` refuses,
or read one differently, ``chartledger verify`` would open a payload under a header the format
does not allow. Valid headers, and headers changed value by value and byte by byte, go
through both here; the cache is kept from example to example, as a long check keeps it.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from verify.canonical import pack_ordered
from verify.errors import VerificationError
from verify.records import HEADER_KEYS, _well_formed_header, parse_header, read_header

STREAMS = ["d76f48c9-e5c2-4ce0-82fc-a34441f85697", "0a6f48c9-e5c2-4ce0-82fc-a34441f85690"]
SUBJECTS = ["patient:0001", "patient:0002", "user:07"]

odd_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2**40),
    st.floats(allow_nan=False),
    st.binary(max_size=33),
    st.text(max_size=12),
    st.sampled_from(
        [
            "patient:0001#" + "ab" * 16,
            "practice#" + "cd" * 16,
            "2026-02-30T10:29:26.994331Z",
            "2026-11-25T10:29:26.994331Z",
            "2026-11-25T10:29:26.99433\u0661Z",
            STREAMS[0].upper(),
            *STREAMS,
            *SUBJECTS,
        ]
    ),
    st.lists(st.sampled_from([*SUBJECTS, "patient:0001", "nobody", 7]), max_size=3),
)


@st.composite
def headers(draw: st.DrawFn) -> dict[str, Any]:
    subjects = sorted(draw(st.sets(st.sampled_from(SUBJECTS), max_size=3)))
    owner = draw(st.sampled_from(["practice", *subjects]))
    return {
        "key": f"{owner}#{'ab' * 16}",
        "type": draw(st.sampled_from(["common:Chart.Noted", "x"])),
        "actor": draw(st.sampled_from([None, "user:07"])),
        "format": 1,
        "sealed": b"\x01" * 32,
        "stream": draw(st.sampled_from(STREAMS)),
        "session": None,
        "version": draw(st.integers(1, 5)),
        "original": None,
        "recorded": "2026-11-25T10:29:26.994331Z",
        "subjects": subjects,
        "commitment": b"\x07" * 32,
    }


def _same_answer(header_bytes: bytes) -> None:
    try:
        expected = parse_header(header_bytes)
    except VerificationError as e:
        try:
            read_header(header_bytes)
        except VerificationError as again:
            assert type(again) is type(e)
            return
        raise AssertionError(f"read_header accepted what parse_header refuses: {e}") from None
    assert read_header(header_bytes) == expected


@given(headers(), st.sampled_from(HEADER_KEYS), odd_values, st.booleans())
@settings(max_examples=150, deadline=None)
def test_a_header_with_one_value_changed_reads_alike(
    header: dict[str, Any], name: str, value: Any, change: bool
) -> None:
    _same_answer(pack_ordered(header))  # the valid one first: it fills the cache
    if change:
        header[name] = value
    try:
        header_bytes = pack_ordered(header)
    except Exception:  # a value with no canonical encoding: no header to read
        return
    _same_answer(header_bytes)


@given(headers(), st.data())
@settings(max_examples=100, deadline=None)
def test_a_header_with_one_byte_changed_reads_alike(header: dict[str, Any], data: Any) -> None:
    header_bytes = bytearray(pack_ordered(header))
    _same_answer(bytes(header_bytes))
    i = data.draw(st.integers(0, len(header_bytes) - 1))
    header_bytes[i] = data.draw(st.integers(0, 255))
    _same_answer(bytes(header_bytes))
    _same_answer(bytes(header_bytes) + b"\x00")  # trailing bytes


@given(headers())
@settings(max_examples=20, deadline=None)
def test_a_valid_header_is_read_without_parse_header(header: dict[str, Any]) -> None:
    assert _well_formed_header(pack_ordered(header)) == parse_header(pack_ordered(header))
