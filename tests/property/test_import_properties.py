"""Import parsers for any input: every row or message is accepted or rejected with a reason,
never both and never dropped; what is accepted is exactly what an independent reading of the
rules accepts; values and units arrive exactly as sent; no input makes a parser raise."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import InvalidQuantity
from domain.imports import hl7_labs
from domain.imports.csv_patients import ColumnMap, parse_patients
from domain.imports.email import parse_emails, split_file
from domain.imports.hl7_labs import parse_lab_messages, split_messages
from domain.imports.sms import parse_sms_export
from domain.quantities import check_unit

SETTINGS = settings(max_examples=100, deadline=None)
MAP = ColumnMap(
    columns={
        "mrn": "MRN",
        "family_name": "Last",
        "given_name": "First",
        "birth_date": "DOB",
        "sex": "Sex",
    },
    date_format="%Y-%m-%d",
    sex_codes={"F": "female", "M": "male"},
)
HEADER = ["MRN", "Last", "First", "DOB", "Sex", "Notes"]

names = st.sampled_from(["", " ", "Doe", "O'Neil", "Poe, Jr.", 'Say "hi"', "Zoë"])
mrns = st.sampled_from(["", "M1", "M2", "M3", "M4", "X-9"])
dates = st.sampled_from(["1980-03-14", "2001-12-31", "1980-02-30", "14/03/1980", "", "1980-3-4"])
sexes = st.sampled_from(["F", "M", "f", "X", ""])
rows = st.lists(
    st.tuples(mrns, names, names, dates, sexes, names).map(list)
    | st.lists(names, min_size=0, max_size=8),  # wrong field counts (and blank lines)
    max_size=12,
)


def _valid_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _fields_ok(row: list[str]) -> bool:
    mrn, last, first, dob, sex, _ = row
    return (
        all(v.strip() for v in (mrn, last, first, dob, sex))
        and _valid_date(dob)
        and sex in ("F", "M")
    )


@SETTINGS
@given(rows, st.sets(mrns, max_size=2))
def test_every_csv_row_is_accepted_or_rejected_exactly_once(
    data_rows: list[list[str]], existing: set[str]
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(data_rows)
    parsed = parse_patients(out.getvalue().encode(), MAP, existing)

    # Each written row is on its own line (no field holds a newline): row n is on line n + 2.
    real = {f"row {n + 2}": row for n, row in enumerate(data_rows) if row}
    accepted = [a.location for a in parsed.accepted]
    rejected = [r.location for r in parsed.rejections]
    assert sorted(accepted + rejected) == sorted(real)
    assert not set(accepted) & set(rejected)
    assert all(r.reasons and all(r.reasons) for r in parsed.rejections)

    counted = [r[0] for r in real.values() if len(r) == len(HEADER) and r[0].strip()]
    expected = {
        location
        for location, row in real.items()
        if len(row) == len(HEADER)
        and _fields_ok(row)
        and counted.count(row[0]) == 1
        and row[0] not in existing
    }
    assert set(accepted) == expected
    for a in parsed.accepted:
        row = real[a.location]
        assert (a.item.mrn, a.item.family_name, a.item.given_name) == (row[0], row[1], row[2])
        assert a.item.birth_date == datetime.strptime(row[3], "%Y-%m-%d").date()


@SETTINGS
@given(rows)
def test_csv_rejections_never_echo_a_field_value(data_rows: list[list[str]]) -> None:
    marked = [[f"{v}#{i}{j}secret" for j, v in enumerate(r)] for i, r in enumerate(data_rows)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([HEADER, *marked])
    parsed = parse_patients(out.getvalue().encode(), MAP)
    reasons = [reason for r in parsed.rejections for reason in r.reasons]
    assert not any("secret" in reason for reason in reasons)


known_units = st.sampled_from(
    ["mg/dL", "mmol/L", "10*3/uL", "%", "[IU]/L", "mm[Hg]", "{cells}/uL", "/min", "g/(24.h)"]
)
any_units = known_units | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="|^~\\&"),
    min_size=1,
    max_size=12,
)
decimals = st.from_regex(r"[+-]?[0-9]{1,6}(\.[0-9]{1,4})?", fullmatch=True)


def _oru(value: str, unit: str) -> bytes:
    return (
        "MSH|^~\\&|LIS|Lab|||20260101||ORU^R01|C1|P|2.5.1\r"
        "PID|1||M-1^^^H^MR\r"
        "OBR|1|||1^Panel^LN|||20260101\r"
        f"OBX|1|NM|2345-7^Glucose^LN||{value}|{unit}^^UCUM||N|||F\r"
    ).encode()


@SETTINGS
@given(decimals, any_units)
def test_an_obx_unit_is_accepted_exactly_when_ucum_knows_it_and_arrives_as_sent(
    value: str, unit: str
) -> None:
    parsed = parse_lab_messages(_oru(value, unit), {"M-1": UUID(int=1)})
    try:
        check_unit(unit)
        known = True
    except InvalidQuantity:
        known = False
    if known:
        [accepted] = parsed.accepted
        [result] = accepted.item.results
        assert (result.value, result.unit) == (value, unit)
        assert accepted.item.raw == _oru(value, unit)
    else:
        [rejection] = parsed.rejections
        assert rejection.reasons[0].startswith("segment 4 (OBX): OBX-6 unit ")


@SETTINGS
@given(st.sampled_from(["mg/dL", "10*3/uL", "10^3/uL", "10^9/L"]))
def test_an_escaped_caret_in_a_unit_is_the_caret_the_sender_meant(unit: str) -> None:
    sent = unit.replace("^", "\\S\\")
    [accepted] = parse_lab_messages(_oru("7.4", sent), {"M-1": UUID(int=1)}).accepted
    assert accepted.item.results[0].unit == unit


@SETTINGS
@given(st.binary(max_size=300) | st.lists(st.sampled_from([
    b"MSH|^~\\&|L|F|||1||ORU^R01|1|P|2.5\r", b"PID|1||M-1^^^H^MR\r", b"OBR|1\r",
    b"OBX|1|NM|1^A||5|mg||N|||F\r", b"OBX|1|NM|1^A||5|m", b"\x0b", b"\x1c\r", b"\n", b"MSH|",
    b"MSH", b"FHS|^~\\&\r", b"\xff\xfe",
]), max_size=12).map(b"".join))  # fmt: skip
def test_any_bytes_give_one_verdict_per_message_and_never_raise(data: bytes) -> None:
    parsed = parse_lab_messages(data, {"M-1": UUID(int=1)})
    messages = split_messages(data)
    assert parsed.items == max(len(messages), 1)
    assert all(r.reasons for r in parsed.rejections)
    for accepted in parsed.accepted:
        assert accepted.item.raw in data


@SETTINGS
@given(st.binary(max_size=200))
def test_any_bytes_as_email_are_accepted_or_rejected_never_raise(data: bytes) -> None:
    parsed = parse_emails([("x.eml", data)])
    assert parsed.items == len(split_file("x.eml", data))
    for accepted in parsed.accepted:
        assert accepted.item.raw in data


millis = st.from_regex(r"[0-9]{1,16}", fullmatch=True) | st.text(max_size=12)


@SETTINGS
@given(st.lists(st.tuples(millis, st.sampled_from(["1", "2", "3", "x"])), max_size=8))
def test_an_sms_is_accepted_exactly_when_its_time_and_type_are_well_formed(
    messages: list[tuple[str, str]],
) -> None:
    def attr(text: str) -> str:
        return (
            text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
            if text.isprintable()
            else "bad"
        )

    body = "".join(
        f'<sms address="+1555" date="{attr(d)}" type="{t}" body="hi" />\n' for d, t in messages
    )
    parsed = parse_sms_export(f"<smses>\n{body}</smses>".encode())
    assert parsed.items == len(messages)
    for n, (date_text, kind) in enumerate(messages, start=1):
        date_text = attr(date_text)
        ok = (
            date_text.isascii()
            and date_text.isdigit()
            and not date_text.startswith("0")
            and len(date_text) <= 15
            and kind in ("1", "2")
        )
        location = f"sms {n} (line {n + 1})"
        assert (location in [a.location for a in parsed.accepted]) == ok
        assert (location in [r.location for r in parsed.rejections]) == (not ok)


obx_segments = st.builds(
    lambda set_id, value, unit, status, tail: (
        f"OBX|{set_id}|NM|2345-7^Glucose^LN||{value}|{unit}^^UCUM||N|||{status}{tail}"
    ),
    st.sampled_from(["1", "2", "17", ""]),
    decimals,
    known_units,
    st.sampled_from(["F", "P", "C"]),
    st.sampled_from(["", "  ", "|||20260101"]),  # trailing spaces must stay as sent
)
body_segments = st.lists(
    obx_segments | st.sampled_from(["OBR|1|||1^Panel^LN|||20260101", "NTE|1||note", ""]),
    max_size=12,
)


def _message(segments: list[str], newline: str) -> bytes:
    head = ["MSH|^~\\&|LIS|Lab|||20260101||ORU^R01|C1|P|2.5.1", "PID|1||M-1^^^H^MR"]
    return newline.join(head + segments).encode() + newline.encode()


@SETTINGS
@given(body_segments, st.sampled_from(["\r", "\n", "\r\n"]), st.integers(1, 4))
def test_parsing_a_slice_at_a_time_reads_a_message_as_parsing_it_whole(
    segments: list[str], newline: str, slice_size: int
) -> None:
    """A message is parsed ``PARSE_SLICE`` segments at a time: whatever the slice, the verdict,
    every reason and every result are those of parsing the message at once."""
    data = _message(segments, newline)
    whole = parse_lab_messages(data, {"M-1": UUID(int=1)})
    default = hl7_labs.PARSE_SLICE
    hl7_labs.PARSE_SLICE = slice_size
    try:
        sliced = parse_lab_messages(data, {"M-1": UUID(int=1)})
    finally:
        hl7_labs.PARSE_SLICE = default
    assert (sliced.accepted, sliced.rejections) == (whole.accepted, whole.rejections)


good_obx = st.builds(
    lambda set_id, value, unit: f"OBX|{set_id}|NM|2345-7^Glucose^LN||{value}|{unit}^^UCUM||N|||F",
    st.sampled_from(["1", "2", "17", ""]),
    decimals,
    known_units,
)


@SETTINGS
@given(st.lists(good_obx | st.sampled_from(["NTE|1||note", "", "OBR|2|||2^Other^LN"]), max_size=12))
def test_each_result_names_the_segment_it_came_from(segments: list[str]) -> None:
    """``index`` is the OBX's place in the stored message (MSH is 1, empty lines dropped) and
    ``set_id`` its OBX-1: the reference an imported result keeps instead of a copy."""
    segments = ["OBR|1|||1^Panel^LN|||20260101", *segments, "OBX|9|NM|1^A^LN||5|mg||N|||F"]
    [accepted] = parse_lab_messages(_message(segments, "\r"), {"M-1": UUID(int=1)}).accepted
    lines = [line for line in accepted.item.raw.decode().split("\r") if line]
    assert len(accepted.item.results) == sum(line.startswith("OBX") for line in lines)
    for result in accepted.item.results:
        fields = lines[result.index - 1].split("|")
        assert fields[0] == "OBX" and (fields[1] or None) == result.set_id
        assert (fields[5], fields[6].split("^")[0]) == (result.value, result.unit)
        assert result.segment == f"segment {result.index} (OBX)"


@SETTINGS
@given(body_segments, st.integers(0, 8), st.sampled_from(["\r", "\n", "\r\n"]))
def test_a_file_over_the_results_bound_is_refused_whole_and_one_within_it_read_as_ever(
    segments: list[str], bound: int, newline: str
) -> None:
    data = _message(segments, newline) * 2  # two messages
    count = 2 * sum(s.startswith("OBX") for s in segments)
    unbounded = parse_lab_messages(data, {"M-1": UUID(int=1)})
    bounded = parse_lab_messages(data, {"M-1": UUID(int=1)}, max_results=bound)
    if count <= bound:
        assert (bounded.accepted, bounded.rejections) == (
            unbounded.accepted,
            unbounded.rejections,
        )
    else:
        assert bounded.accepted == [] and bounded.items == unbounded.items == 2
        assert {r.reasons for r in bounded.rejections} == {
            (
                f"the file holds {count} OBX segments, more than the {bound} one import takes: "
                "split it into smaller files",
            )
        }
