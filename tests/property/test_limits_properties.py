"""The input bounds' rules for any input (issue 17).

- Text the gauge lets through, JSON or not, never makes the JSON parser raise RecursionError.
- The depth gauge agrees with the nesting of any JSON value, however its text is split into
  chunks (inside a string, between a backslash and what it escapes), and refuses exactly the
  text nested deeper than its limit.
- An SMS backup is read the same in every encoding expat reads, and one with a DTD (entities
  or not) is refused in every encoding, never with anything accepted or any entity expanded.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.imports.sms import parse_sms_export
from domain.json_depth import DepthGauge, TooDeeplyNested, check_depth

SETTINGS = settings(max_examples=200, deadline=None)

# Strings full of what the gauge must not count: brackets, quotes, backslashes.
tricky = st.text(alphabet=st.sampled_from('[]{}"\\ax\u00e9\u2028\U0001f600'), max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky, inner, max_size=3),
    max_leaves=30,
)


def nesting(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((nesting(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(v) for v in value.values()), default=0)
    return 0


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@SETTINGS
@given(json_values, st.booleans(), st.lists(st.integers(min_value=0), max_size=12))
def test_the_gauge_measures_any_json_split_anywhere(
    value: Any, ascii_only: bool, cuts: list[int]
) -> None:
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    gauge = DepthGauge(limit=10_000)
    for chunk in chunked(data, cuts):
        gauge.feed(chunk)
    assert (gauge.deepest, gauge.depth) == (nesting(value), 0)


@SETTINGS
@given(json_values, st.integers(min_value=0, max_value=8))
def test_the_gauge_refuses_exactly_what_nests_deeper_than_its_limit(value: Any, limit: int) -> None:
    data = json.dumps(value)
    if nesting(value) > limit:
        with pytest.raises(TooDeeplyNested, match=f"deeper than {limit} levels"):
            check_depth(data, limit)
    else:
        check_depth(data, limit)


@SETTINGS
@given(st.integers(min_value=1, max_value=200_000))
def test_the_gauge_refuses_brackets_nested_any_depth_without_recursing(levels: int) -> None:
    text = "[" * levels + "]" * levels
    if levels > 64:
        with pytest.raises(TooDeeplyNested):
            check_depth(text)
    else:
        check_depth(text)


noise = st.text(alphabet=st.sampled_from('[]{}"\\ ,:1a'), max_size=12)


@SETTINGS
@given(noise, st.integers(min_value=0, max_value=5_000), noise, st.sampled_from("[{"))
def test_whatever_the_gauge_lets_through_json_parses_without_recursing_too_deep(
    before: str, levels: int, after: str, bracket: str
) -> None:
    """Valid or not, text the gauge passes never makes the parser recurse too deep."""
    opener = bracket if bracket == "[" else '{"k":'
    text = before + opener * levels + after
    try:
        check_depth(text)
    except TooDeeplyNested:
        return
    # Not JSON is a ValueError where it stops being JSON, before anything deeper; a
    # RecursionError would fail the test.
    with contextlib.suppress(ValueError):
        json.loads(text)


# (the name in the XML declaration, the Python codec, a byte order mark to put first)
ENCODINGS = [
    ("UTF-8", "utf-8", b""),
    ("UTF-8", "utf-8", b"\xef\xbb\xbf"),
    ("UTF-16", "utf-16-le", b"\xff\xfe"),
    ("UTF-16", "utf-16-be", b"\xfe\xff"),
    ("UTF-16", "utf-16-be", b""),  # no BOM: expat reads the byte order from "<?"
    ("ISO-8859-1", "latin-1", b""),
    ("windows-1252", "cp1252", b""),
    ("UTF-32", "utf-32-le", b"\xff\xfe\x00\x00"),  # expat cannot read it: refused as a file
]
encodings = st.sampled_from(ENCODINGS)
bodies = st.text(
    st.characters(categories=["L", "N", "P", "S", "Zs"], exclude_characters="\u00a0"),
    max_size=20,
)
dtds = st.sampled_from(
    [
        '<!DOCTYPE smses [<!ENTITY e "EXPANDED">]>',
        '<!DOCTYPE smses [<!ENTITY e SYSTEM "file:///etc/hostname">]>',
        '<!DOCTYPE smses [<!ENTITY % p "x"> <!ENTITY e "EXPANDED">]>',
        '<!DOCTYPE smses SYSTEM "http://127.0.0.1:9/sms.dtd">',
        "<!DOCTYPE smses>",
    ]
)


def export(encoding: tuple[str, str, bytes], body: str, dtd: str | None) -> bytes:
    name, codec, bom = encoding
    text = (
        f'<?xml version="1.0" encoding="{name}"?>\n'
        + (dtd + "\n" if dtd else "")
        + '<smses count="1">\n'
        + f'  <sms address="+15551230001" date="1795000000000" type="1" body={quoteattr(body)}'
        + (' note="&e;"' if dtd and "ENTITY e" in dtd else "")
        + " />\n</smses>\n"
    )
    # Characters an 8-bit encoding lacks go as character references, as an exporter would.
    return bom + text.encode(codec, "xmlcharrefreplace")


@SETTINGS
@given(encodings, bodies)
def test_an_export_reads_the_same_in_every_encoding(
    encoding: tuple[str, str, bytes], body: str
) -> None:
    parsed = parse_sms_export(export(encoding, body, None))
    if encoding[1].startswith("utf-32"):
        assert parsed.accepted == [] and [r.location for r in parsed.rejections] == ["file"]
        return
    assert parsed.rejections == []
    [accepted] = parsed.accepted
    assert (accepted.location, accepted.item.body) == ("sms 1 (line 3)", body)


@SETTINGS
@given(encodings, bodies, dtds)
def test_an_export_with_a_dtd_is_refused_in_every_encoding(
    encoding: tuple[str, str, bytes], body: str, dtd: str
) -> None:
    parsed = parse_sms_export(export(encoding, body, dtd))
    assert parsed.accepted == []
    [rejection] = parsed.rejections
    assert rejection.location == "file"
    assert "EXPANDED" not in str(rejection)
    if not encoding[1].startswith("utf-32"):
        assert rejection.reasons == ("declares a DOCTYPE or entities, which an export never does",)
