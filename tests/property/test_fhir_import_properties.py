"""Properties of the FHIR import's mapping rules (docs/IMPORTS.md §9.2): a dateTime keeps its
text and precision and reads as the instant it names; a decimal keeps its characters; a line's
numbers come out as the file wrote them; a resource whose patient is not in the export is
refused naming the element, never a value."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.imports.fhir_bulk import SourceFile, read_bulk
from domain.imports.fhir_values import (
    DECIMAL,
    Number,
    decimal_text,
    parse_time,
    read_json_line,
)

offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)
moments = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
)


def written(moment: datetime, digits: int, zulu: bool) -> str:
    """``moment`` as a FHIR dateTime with ``digits`` fraction digits (0: none)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + f"{moment.microsecond:06d}"[:digits]
    offset = moment.utcoffset() or timedelta(0)
    if zulu and offset == timedelta(0):
        return text + "Z"
    minutes = int(offset.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    return text + f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@settings(max_examples=80, deadline=None)
@given(moments, st.integers(min_value=0, max_value=6), st.booleans())
def test_a_time_keeps_its_text_and_reads_as_the_instant_it_names(
    moment: datetime, digits: int, zulu: bool
) -> None:
    text = written(moment, digits, zulu)
    read = parse_time(text)
    assert read.raw == text and read.precision == "second"
    cut = moment.replace(microsecond=int(f"{moment.microsecond:06d}"[:digits].ljust(6, "0")))
    assert read.value == cut  # the same instant
    assert read.value is not None and read.value.utcoffset() == moment.utcoffset()
    assert read.day == moment.date()  # the sender's own calendar day, not UTC's


@settings(max_examples=50, deadline=None)
@given(st.dates(min_value=date(1, 1, 1)), st.sampled_from(["year", "month", "day"]))
def test_a_partial_date_keeps_its_precision(day: date, precision: str) -> None:
    text = {"year": f"{day.year:04d}", "month": f"{day.year:04d}-{day.month:02d}"}.get(
        precision, day.isoformat()
    )
    read = parse_time(text)
    assert (read.raw, read.precision) == (text, precision)
    assert read.value == (day if precision == "day" else None)


@settings(max_examples=50, deadline=None)
@given(st.text(max_size=30))
def test_anything_else_is_refused_or_reads_back_as_itself(text: str) -> None:
    try:
        read = parse_time(text)
    except ValueError as e:
        assert str(e).startswith("is not a FHIR dateTime (")  # a fixed rule, never the value
        return
    assert read.raw == text


decimals = st.from_regex(r"-?(0|[1-9][0-9]{0,12})(\.[0-9]{1,12})?", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(decimals, st.sampled_from(["mg/dL", "10*3/uL", "Cel", "/min"]))
def test_a_quantity_keeps_its_decimal_string_exactly(value: str, unit: str) -> None:
    line = f'{{"value":{value},"unit":{json.dumps(unit)}}}'.encode()
    element = read_json_line(line)
    assert type(element["value"]) is Number and element["value"] == value
    assert decimal_text(element, "value") == value


@settings(max_examples=50, deadline=None)
@given(st.from_regex(r"[+-]?[0-9]{1,10}(\.[0-9]{1,6})?", fullmatch=True))
def test_the_original_text_extension_wins_over_the_json_number(text: str) -> None:
    ext = "https://chartledger.local/fhir/StructureDefinition/original-text"
    element = {
        "value": Number("1"),
        "_value": {"extension": [{"url": ext, "valueString": text}]},
    }
    assert decimal_text(element, "value") == text


@settings(max_examples=40, deadline=None)
@given(st.from_regex(r"-?[1-9][0-9]{0,5}(\.[0-9]{1,6})?[eE][+-]?[0-9]{1,3}", fullmatch=True))
def test_an_exponent_is_refused(value: str) -> None:
    assert DECIMAL.fullmatch(value)
    try:
        decimal_text({"value": Number(value)}, "value")
    except ValueError as e:
        assert value not in str(e)
    else:
        raise AssertionError("an exponent was taken")


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.from_regex(r"[0-9]{6,12}", fullmatch=True),
    names,
    st.sampled_from(["Condition", "AllergyIntolerance", "Encounter"]),
)
def test_a_record_of_a_patient_not_in_the_export_is_refused_without_values(
    secret: str, ident: str, kind: str
) -> None:
    element = "patient" if kind == "AllergyIntolerance" else "subject"
    resource = {
        "resourceType": kind,
        "id": ident,
        element: {"reference": f"Patient/{secret}x"},
        "code": {"text": secret},
        "status": "finished",
        "class": {"code": "AMB"},
    }
    data = json.dumps(resource).encode() + b"\n"
    bulk = read_bulk([SourceFile("f.ndjson", data)], "urn:x", lambda _: None, lambda _: False)
    assert not bulk.parsed.accepted
    (rejection,) = bulk.parsed.rejections
    assert rejection.location == f"f.ndjson line 1 ({kind}/{ident})"
    assert any(f"{element} does not reference a Patient" in r for r in rejection.reasons)
    assert not any(secret in r for r in rejection.reasons)


def test_an_hour_past_the_day_is_refused() -> None:
    for text in ("2024-01-01T24:00:00Z", "2024-02-30", "2024-13", "2024-01-01T10:00:00"):
        try:
            parse_time(text)
        except ValueError:
            continue
        raise AssertionError(text)
    assert parse_time("2024-01-01T10:00:00Z").value == datetime(2024, 1, 1, 10, tzinfo=UTC)
