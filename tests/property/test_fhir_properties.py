"""The EHI export's FHIR rules for any input (projections/fhir): a quantity keeps the exact
digits and unit it was received with, the NDJSON writer is JSON, and every lab result and every
audit row becomes a resource fhir.resources' R4B models accept."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any
from uuid import uuid4

from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.quantity import Quantity as FhirQuantity
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.access import PURPOSES_OF_USE
from domain.labs import LabResult
from domain.quantities import MAX_LENGTH, Quantity, check_unit
from projections.audit import COLUMNS
from projections.fhir.audit_events import ACTIONS, AuditLines, audit_event
from projections.fhir.common import ORIGINAL_TEXT, UCUM, Context, Tracked, quantity
from projections.fhir.ndjson import JSON_NUMBER, MARK, Number, dumps, json_decimal, slow_dumps
from projections.fhir.observations import lab_observation

SETTINGS = settings(max_examples=200, deadline=None)
CONTEXT = Context(str(uuid4()), "chartledger.local/p", "2026-11-25T00:00:00.000000Z")
RECORDED = "2026-11-02T09:00:00.000000Z"

digits = st.text(alphabet="0123456789", min_size=1, max_size=25)
decimal_strings = st.builds(
    lambda sign, whole, fraction: f"{sign}{whole}{'' if fraction is None else '.' + fraction}",
    st.sampled_from(["", "+", "-"]),
    digits,
    st.none() | digits,
).filter(lambda s: len(s) <= MAX_LENGTH)


def _unit_or_none(text: str) -> str | None:
    try:
        return check_unit(text)
    except Exception:
        return None


SAMPLE_UNITS = ["mg/dL", "mmol/L", "10*3/uL", "%", "Cel", "[in_i]", "{cells}/uL", "mm[Hg]"]
# Units the ledger accepts (UCUM, checked by the domain), and any printable text at all (units
# recorded before the domain checked UCUM, or by another system): both keep their text.
ledger_units = st.one_of(
    st.sampled_from(SAMPLE_UNITS),
    st.text(alphabet="mgLdkuc/.%*0123456789[]{}", min_size=1, max_size=10)
    .map(_unit_or_none)
    .filter(lambda u: u is not None),
)
units = ledger_units | st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12
)


def written_value(text: str) -> str:
    """The characters the NDJSON holds for the quantity's value."""
    found = re.search(r'"value":([^,}]+)', text)
    assert found is not None
    return found.group(1)


@SETTINGS
@given(decimal_strings, units)
def test_a_quantity_keeps_the_exact_digits_and_unit_it_was_received_with(
    value: str, unit: str
) -> None:
    found = quantity(value, unit)
    text = dumps(found)
    parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    written = written_value(text)
    # The number is the received text, less only a '+' sign and leading zeros of the whole part.
    sign, whole, fraction = re.fullmatch(r"([+-]?)([0-9]+)(\.[0-9]+)?", value).groups()  # type: ignore[union-attr]
    assert written == ("-" if sign == "-" else "") + (whole.lstrip("0") or "0") + (fraction or "")
    assert Decimal(written) == Decimal(value) and JSON_NUMBER.fullmatch(written)
    assert str(parsed["value"]) == written  # a Decimal-keeping reader gets the very digits
    if written == value:
        assert "_value" not in parsed
    else:
        assert parsed["_value"]["extension"] == [{"url": ORIGINAL_TEXT, "valueString": value}]
    assert parsed["unit"] == unit
    known = _unit_or_none(unit) is not None
    assert (parsed.get("system"), parsed.get("code")) == ((UCUM, unit) if known else (None, None))
    FhirQuantity.model_validate(parsed)


@SETTINGS
@given(decimal_strings, ledger_units)
def test_a_lab_result_becomes_a_valid_observation_with_its_value_as_received(
    value: str, unit: str
) -> None:
    lab = LabResult.receive(
        patient_id=uuid4(), loinc_code="2345-7", test_name="Glucose",
        quantity=Quantity(value, unit), performing_lab="Lab", source_message=b"OBX",
        source_format="HL7v2", reference_low=value, reference_high=value,
    )  # fmt: skip
    resource = lab_observation(Tracked(lab, RECORDED, RECORDED, []))
    text = dumps(resource)
    parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    model = Observation.model_validate(parsed)
    assert model.valueQuantity.unit == unit
    assert Decimal(written_value(text)) == Decimal(value)
    assert str(parsed["valueQuantity"]["value"]) == json_decimal(value)[0].text
    assert str(parsed["referenceRange"][0]["low"]["value"]) == json_decimal(value)[0].text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@SETTINGS
@given(json_values)
def test_the_ndjson_writer_writes_json_on_one_ascii_line(value: Any) -> None:
    text = dumps(value)
    assert json.loads(text) == value
    assert text.isascii() and "\n" not in text
    assert text == json.dumps(value, separators=(",", ":"))


@SETTINGS
@given(decimal_strings)
def test_numbers_are_written_unquoted_and_only_plain_json_numbers_are_numbers(
    value: str,
) -> None:
    number, changed = json_decimal(value)
    assert dumps({"n": number}) == '{"n":' + number.text + "}"
    assert changed == (number.text != value)
    try:
        Number(value)
    except ValueError:
        assert changed
    else:
        assert not changed


ids = st.uuids().map(str)
words = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF), min_size=1, max_size=20
)
words = words.filter(lambda w: w.strip() != "")
timestamps = st.just(RECORDED) | st.just("20261102083000")
rows = st.tuples(
    st.integers(min_value=0, max_value=2**40),
    st.just(RECORDED),
    timestamps,
    st.none(),
    st.none() | ids,
    st.sampled_from(sorted(ACTIONS)),
    st.sampled_from(["chart", "labs", "notes", "audit", "other"]) | words,
    st.sampled_from(["success", "failure"]),
    st.just("system") | ids,
    st.none() | st.sampled_from(PURPOSES_OF_USE) | words,
    st.just("domain.notes:Note.Signed") | words,
    st.none() | ids,  # target_user_id
    st.none() | words,  # detail
    st.none() | words,  # reason
)


@SETTINGS
@given(rows, st.lists(ids, min_size=1, max_size=3, unique=True), ids)
def test_every_audit_row_becomes_a_balp_audit_event(
    row: tuple[Any, ...], patients: list[str], stream: str
) -> None:
    resource = audit_event(row, stream, patients, CONTEXT)
    model = AuditEvent.model_validate(json.loads(dumps(resource)))
    r = dict(zip(COLUMNS, row, strict=True))
    assert model.action == ACTIONS[r["action"]][2]
    assert model.recorded is not None and model.outcome == (
        "0" if r["outcome"] == "success" else "4"
    )
    named = [e.what.reference for e in model.entity if e.what.reference]
    assert named == [f"Patient/{p}" for p in patients]
    agent = model.agent[0]
    assert agent.requestor is (r["user_id"] is not None)


@SETTINGS
@given(rows, st.lists(ids, max_size=3, unique=True), ids, st.booleans(), st.data())
def test_the_export_writes_each_audit_event_exactly_as_its_mapping_says(
    row: tuple[Any, ...], patients: list[str], stream: str, whole: bool, data: st.DataObject
) -> None:
    # Some patients may have no Patient resource in the export (disposed of).
    absent = set(data.draw(st.lists(st.sampled_from(patients))) if patients else [])
    line = AuditLines(CONTEXT).line(row, stream, patients, whole, absent)
    assert line.isascii() and "\n" not in line
    assert json.loads(line) == audit_event(row, stream, patients, CONTEXT, whole, absent)


numbers = decimal_strings.map(lambda text: json_decimal(text)[0])
with_numbers = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | numbers | st.just(MARK),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _plain(value: Any) -> Any:
    if isinstance(value, Number):
        return Decimal(value.text)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@SETTINGS
@given(with_numbers)
def test_numbers_are_written_with_their_digits_wherever_they_are(value: Any) -> None:
    text = dumps(value)
    assert text == slow_dumps(value)  # even when a string spells the marker
    parsed = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    assert parsed == _plain(value)
