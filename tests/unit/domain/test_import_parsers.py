"""The import parsers on their own (no I/O): exact rejections for each rule they enforce."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from domain.imports.csv_patients import ColumnMap, InvalidMapping, parse_patients
from domain.imports.email import parse_emails, threads
from domain.imports.hl7_labs import parse_lab_messages
from domain.imports.sms import parse_sms_export

FIXTURES = Path(__file__).parent.parent.parent / "fixtures" / "imports"
MAP = ColumnMap.from_json((FIXTURES / "billing_map.json").read_bytes())
PATIENTS = {"M-1": UUID(int=1), "M-2": UUID(int=2)}
COLUMNS = '{"mrn": "A", "family_name": "B", "given_name": "C", "birth_date": "D", "sex": "E"}'
MSH = "MSH|^~\\&|LIS|Lab|||20260101||ORU^R01|C1|P|2.5.1"


def verdicts(parsed: object) -> list[str]:
    return [str(r) for r in parsed.rejections]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("not json", "the column map is not JSON"),
        ("[]", "the column map must be a JSON object"),
        ('{"columns": {}, "date_format": "%Y", "x": 1}', "the column map has unknown keys: x"),
        ('{"columns": {"mrn": 1}, "date_format": "%Y"}',
         "columns must be a JSON object of non-empty strings"),
        (f'{{"columns": {COLUMNS}, "date_format": "YYYY"}}',
         "date_format must be a strptime format such as %m/%d/%Y"),
        (f'{{"columns": {COLUMNS}, "date_format": "%Y", "sex_codes": {{"F": "woman"}}}}',
         "sex_codes values must be one of female, male, other, unknown"),
    ],
)  # fmt: skip
def test_a_malformed_column_map_is_refused_naming_the_rule(text: str, error: str) -> None:
    with pytest.raises(InvalidMapping, match=f"^{error}"):
        ColumnMap.from_json(text)


def test_a_csv_that_is_not_utf8_or_lacks_mapped_columns_is_one_file_level_rejection() -> None:
    assert verdicts(parse_patients(b"\xff\xfeChart#\n", MAP)) == ["file: is not UTF-8 text"]
    assert verdicts(parse_patients(b"", MAP)) == ["file: has no header row"]
    assert verdicts(parse_patients(b"Chart#,Last,Last,DOB\nA,B,C,D\n", MAP)) == [
        "header: names column 'Last' more than once; has no column 'First' (for given_name), "
        "'Gender' (for sex)"
    ]


def test_an_unterminated_quote_stops_the_file_at_that_row() -> None:
    data = b'Chart#,Last,First,DOB,Gender\nA1,Doe,Jane,03/14/1980,F\nA2,"Roe,Rich,01/01/1970,M\n'
    parsed = parse_patients(data, MAP)
    assert [a.location for a in parsed.accepted] == ["row 2"]
    assert verdicts(parsed) == ["row 3: is not valid CSV (a stray or unterminated quote)"]


def test_a_row_with_a_quoted_newline_is_named_by_the_line_it_starts_on() -> None:
    data = (
        b'Chart#,Last,First,DOB,Gender\nA1,"Doe\nSmith",Jane,03/14/1980,F\n'
        b"A2,Roe,Rich,13/01/1970,M\n"
    )
    parsed = parse_patients(data, MAP)
    assert parsed.accepted[0].item.family_name == "Doe\nSmith"
    assert verdicts(parsed) == [
        "row 4: birth_date (column 'DOB') is not a date in the format %m/%d/%Y"
    ]


def test_extra_identifiers_are_mapped_and_kept_as_sent() -> None:
    mapping = ColumnMap(MAP.columns, MAP.date_format, MAP.sex_codes, {"urn:billing": "Acct"})
    data = (
        b"Chart#,Last,First,DOB,Gender,Acct\nA1,Doe,Jane,03/14/1980,F,0042\n"
        b"A2,Roe,R,03/14/1980,M,\n"
    )
    first, second = (a.item for a in parse_patients(data, mapping).accepted)
    assert (first.identifiers, second.identifiers) == ((("urn:billing", "0042"),), ())


@pytest.mark.parametrize(
    ("segments", "reasons"),
    [
        ([MSH, "PID|1||M-1^^^H^MR", "PID|1||M-2^^^H^MR", "OBR|1", "OBX|1|NM|1^A||1|mg||N|||F"],
         ["has more than one PID segment"]),
        ([MSH, "PID|1||M-1^^^H^MR", "OBR|1"], ["has no OBX segment"]),
        ([MSH, "OBR|1", "OBX|1|NM|1^A||1|mg||N|||F"], ["has no PID segment"]),
        ([MSH, "PID|1||M-1^^^H^MR", "OBX|1|NM|1^A||1|mg||N|||F", "OBR|1"],
         ["segment 3 (OBX): comes before any OBR"]),
        ([MSH, "PID|1", "OBR|1", "OBX|1|NM|1^A||1|mg||N|||F"],
         ["segment 2 (PID): has no PID-3 patient identifier"]),
        ([MSH, "PID|1||M-1^^^H^MR", "OBR|1", "OBX|1|ST|1^A||high|mg||N|||C"],
         ["segment 4 (OBX): OBX-11 result status C is not imported (only F and P)",
          "segment 4 (OBX): OBX-2 value type is not NM: only numeric results are imported",
          "segment 4 (OBX): OBX-5 value is not a decimal string (sign, digits, "
          "optional fraction)"]),
        ([MSH.replace("|Lab|", "||"), "PID|1||M-1^^^H^MR", "OBR|1", "OBX|1|NM|^A||1|mg||N|||F"],
         ["segment 4 (OBX): OBX-3 has no code and name (code^name^system)",
          "segment 4 (OBX): no performing lab: OBX-23 and MSH-4 are empty"]),
        ([MSH.replace("|C1|P|2.5.1", "|C1|P"), "PID|1||M-1^^^H^MR", "OBR|1",
          "OBX|1|NM|1^A||1|mg||N|||F"],
         ["segment 1 (MSH) has no MSH-12 (version): the segment is cut off"]),
    ],
)  # fmt: skip
def test_each_hl7_structure_rule_names_its_segment(segments: list[str], reasons: list[str]) -> None:
    parsed = parse_lab_messages("\r".join(segments).encode() + b"\r", PATIENTS)
    assert [list(r.reasons) for r in parsed.rejections] == [reasons]


def test_mllp_framed_messages_are_unwrapped_and_a_missing_end_block_is_cut_off() -> None:
    message = "\r".join([MSH, "PID|1||X^^^H^PI~M-2^^^H^MR", "OBR|1", "OBX|1|NM|1^A||1|mg||N|||F"])
    framed = b"\x0b" + message.encode() + b"\r\x1c\r" + b"\x0b" + message.encode()
    parsed = parse_lab_messages(framed, PATIENTS)
    [accepted] = parsed.accepted
    assert accepted.item.raw == message.encode() + b"\r"
    assert accepted.item.patient_id == UUID(int=2)  # the MR repetition of PID-3
    assert verdicts(parsed) == ["message 2: is cut off (an MLLP start block without its end block)"]


def test_an_mbox_splits_into_messages_threaded_by_their_references() -> None:
    parsed = parse_emails([("box", (FIXTURES / "mailbox.mbox").read_bytes())])
    assert [a.location for a in parsed.accepted] == [
        "box message 1", "box message 2", "box message 3",
    ]  # fmt: skip
    assert parsed.accepted[0].item.raw.startswith(b"From: Jane Doe <jane@example.org>\n")
    assert threads([a.item for a in parsed.accepted]) == [[0, 1], [2]]


def test_an_sms_file_that_is_not_an_export_is_one_rejection() -> None:
    assert verdicts(parse_sms_export(b"<sms/>")) == [
        "file: is not an SMS Backup & Restore export (no <smses> root)"
    ]
    assert verdicts(parse_sms_export(b"<smses><sms>")) == [
        "file: is not well-formed XML (line 1: no element found)"
    ]
    bomb = b'<!DOCTYPE x [<!ENTITY a "aaaa">]><smses/>'
    assert verdicts(parse_sms_export(bomb)) == [
        "file: declares a DOCTYPE or entities, which an export never does"
    ]
