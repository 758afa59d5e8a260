"""The DAT load file (legal_hold/review/loadfile.py) for any Unicode values: a row parses back
into the same number of fields, each equal to the value mapped as docs/REVIEW_FILES.md says
(line breaks to ®, DC4 to a space, þ to "th", lone surrogates to U+FFFD) and to the value
itself when it holds none of those. DateSentUTC is the instant of any dated header or ISO time,
and empty (never an error) for anything else."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review.loadfile import dat_line, utc_time

SPECIAL = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029\x14þ"
values = st.text(
    alphabet=st.one_of(st.characters(), st.sampled_from(SPECIAL)), max_size=40
)  # st.characters() includes surrogates


def expected(value: str) -> str:
    """The rule, written out character by character (independently of the writer's regexes)."""
    out = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\r" and value[i + 1 : i + 2] == "\n":
            out.append("®")
            i += 2
            continue
        if char in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029":
            out.append("®")
        elif char == "\x14":
            out.append(" ")
        elif char == "þ":
            out.append("th")
        elif 0xD800 <= ord(char) <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(char)
        i += 1
    return "".join(out)


def parse_line(raw: bytes) -> list[str]:
    text = raw.decode("utf-8")  # a lone surrogate would not even encode
    assert text.endswith("\r\n") and text.count("\r\n") == 1 and "\n" not in text[:-2]
    body = text[:-2]
    assert body[0] == "þ" and body[-1] == "þ"
    return body[1:-1].split("þ\x14þ")


@settings(max_examples=300, deadline=None)
@given(st.lists(values, min_size=1, max_size=8))
def test_any_values_parse_back_as_the_specified_mapping(row):
    fields = parse_line(dat_line(row).encode("utf-8"))
    assert fields == [expected(v) for v in row]
    for field, value in zip(fields, row, strict=True):
        assert not set(field) & set(SPECIAL)
        if not set(value) & set(SPECIAL) and not any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            assert field == value


zones = st.integers(-14 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30), timezones=zones)
)
def test_a_dated_email_header_or_iso_time_gives_its_instant_in_utc(when):
    when = when.replace(microsecond=0)
    expected_utc = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert utc_time(format_datetime(when)) == expected_utc
    assert utc_time(when.isoformat()) == expected_utc
    assert utc_time(format_datetime(when.replace(tzinfo=None))) == ""  # "-0000": zone unknown


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40), st.from_regex(r"\w{3}, \d{1,2} \w{3} \d{1,5} [\d:]{1,9} [+-]\d{4}")
    )
)
def test_any_text_gives_a_utc_time_or_nothing_and_never_fails(text):
    assert re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)?", utc_time(text))
