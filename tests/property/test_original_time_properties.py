"""The source-time readers (domain/original_times.py): an HL7 TS at any precision, with or
without its offset, keeps its text and says the instant it names; epoch milliseconds are an
instant in UTC; reading never reorders what the clock ordered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.original_times import (
    InvalidTime,
    parse_email_date,
    parse_epoch_millis,
    parse_hl7_ts,
    read_time,
)
from projections.fhir.common import FHIR_DATETIME

FEW = settings(max_examples=150, deadline=None)
moments = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 12, 31))
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59)
precisions = st.integers(min_value=1, max_value=7)  # year ... second, then with a fraction
fractions = st.text("0123456789", min_size=1, max_size=6)


def hl7_text(moment: datetime, digits: int, fraction: str, offset: int | None) -> str:
    text = moment.strftime("%Y%m%d%H%M%S")[: (4, 6, 8, 10, 12, 14, 14)[digits - 1]]
    if digits == 7:
        text += "." + fraction
    if offset is not None:
        sign = "-" if offset < 0 else "+"
        text += f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    return text


@FEW
@given(moments, precisions, fractions, st.none() | offsets)
def test_an_hl7_ts_keeps_its_text_and_names_the_instant_its_offset_fixes(
    moment: datetime, digits: int, fraction: str, offset: int | None
) -> None:
    raw = hl7_text(moment, digits, fraction, offset)
    read = parse_hl7_ts(raw)
    stem = raw[:-5] if offset is not None else raw  # the text without its +/-ZZZZ
    assert read.raw == raw
    assert "".join(c for c in read.local if c not in "-T:") == stem  # its precision kept
    assert FHIR_DATETIME.fullmatch(read.fhir)
    whole, _, sent_fraction = stem.partition(".")
    wall = datetime.strptime(whole + "0101000000"[len(whole) - 4 :], "%Y%m%d%H%M%S")
    wall = wall.replace(microsecond=int((sent_fraction + "000000")[:6]) if sent_fraction else 0)
    if offset is None:
        assert read.offset is None and read.instant is None  # no zone is invented
        assert read.fhir == wall.date().isoformat()[: len(read.local[:10])]
    else:
        expected = wall.replace(tzinfo=timezone(timedelta(minutes=offset)))
        assert read.moment() == expected
        assert read.instant == expected.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@FEW
@given(moments, moments, offsets, offsets)
def test_reading_hl7_ts_keeps_the_order_of_the_instants(
    a: datetime, b: datetime, offset_a: int, offset_b: int
) -> None:
    first = parse_hl7_ts(hl7_text(a, 6, "", offset_a)).moment()
    second = parse_hl7_ts(hl7_text(b, 6, "", offset_b)).moment()
    real_a = a.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset_a)))
    real_b = b.replace(microsecond=0, tzinfo=timezone(timedelta(minutes=offset_b)))
    assert (first < second) == (real_a < real_b)
    assert (first == second) == (real_a == real_b)


@FEW
@given(st.integers(min_value=-(10**12), max_value=7 * 10**12), st.integers(0, 10**6))
def test_epoch_milliseconds_are_an_instant_in_utc_in_the_same_order(ms: int, later: int) -> None:
    read = parse_epoch_millis(str(ms))
    assert read.raw == str(ms) and read.offset == "+00:00"
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert read.moment() == epoch + timedelta(milliseconds=ms)
    assert read.instant == (epoch + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert parse_epoch_millis(str(ms + later)).moment() >= read.moment()
    assert FHIR_DATETIME.fullmatch(read.fhir)


@FEW
@given(moments, offsets)
def test_an_email_date_names_the_instant_of_its_zone(moment: datetime, offset: int) -> None:
    zone = timezone(timedelta(minutes=offset))
    sent = moment.replace(microsecond=0, tzinfo=zone)
    sign = "-" if offset < 0 else "+"
    raw = sent.strftime("%a, %d %b %Y %H:%M:%S ") + (
        f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
    )
    read = parse_email_date(raw)
    assert read.raw == raw and read.moment() == sent
    assert FHIR_DATETIME.fullmatch(read.fhir)


@pytest.mark.parametrize(
    "raw",
    ["", "2026-1", "20261", "20261320", "20260230", "2026112024", "202611200760",
     "20261120071500.", "20261120071500+2400", "20261120071500+0060", "1795000000000x"],
)  # fmt: skip
def test_text_that_is_no_hl7_ts_is_refused(raw: str) -> None:
    with pytest.raises(InvalidTime):
        parse_hl7_ts(raw)


def test_a_time_typed_in_fhir_form_still_reads() -> None:
    """Labs entered through the API before the readers kept FHIR text; they still read."""
    read = read_time("2026-11-02T08:30:00Z")
    assert read is not None and read.fhir == "2026-11-02T08:30:00Z"
    assert read_time("soon") is None
