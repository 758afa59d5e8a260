"""Quantities (domain/quantities.py) for any value: kept exactly, converted exactly, never a float.

Any decimal string round-trips byte-for-byte through a lab result, the ledger's canonical
encoding and a replay; a conversion is exactly the Decimal product of the value and the table's
factor; a float cannot get in anywhere, as a value, a factor or a field of a payload.
"""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.checks import payload
from domain.errors import InvalidEntry, InvalidQuantity
from domain.labs import LabResult
from domain.quantities import (
    ANY,
    CONVERSIONS,
    Quantity,
    Rule,
    check_decimal,
    convert,
    multiply_exactly,
)
from events.encoding import CanonicalTranscoder
from tests.unit.domain.memory import new_memory
from verify.canonical import EncodeError

SETTINGS = settings(max_examples=150, deadline=None)

digits = st.text(alphabet="0123456789", min_size=1, max_size=20)
decimal_strings = st.builds(
    lambda sign, whole, fraction: f"{sign}{whole}{'' if fraction is None else '.' + fraction}",
    st.sampled_from(["", "+", "-"]),
    digits,
    st.none() | digits,
)
units = st.sampled_from(
    ["mg/dL", "mmol/L", "umol/L", "g/L", "10*3/uL", "%", "[IU]/L", "mm[Hg]", "{cells}/uL", "1"]
)
rules = st.sampled_from(sorted(CONVERSIONS.values(), key=lambda r: r.name))


@SETTINGS
@given(decimal_strings, units)
def test_any_decimal_string_and_unit_round_trip_exactly_through_the_ledger_encoding(
    value: str, unit: str
) -> None:
    result = LabResult.receive(
        patient_id=uuid4(),
        loinc_code="2345-7",
        test_name="Glucose",
        quantity=Quantity(value, unit),
        performing_lab="Lab",
        source_message=f"OBX|1|NM|2345-7||{value}|{unit}".encode(),
        source_format="HL7v2",
    )
    memory = new_memory()
    memory.save(result)
    again = memory.repository.get(result.id)
    assert (again.value, again.unit) == (value, unit)
    assert type(again.value) is str
    transcoder = CanonicalTranscoder()
    assert transcoder.decode(transcoder.encode({"value": value})) == {"value": value}


@SETTINGS
@given(decimal_strings, rules)
def test_a_conversion_equals_decimal_arithmetic_on_the_exact_factor(value: str, rule: Rule) -> None:
    analyte = "any analyte" if rule.analyte == ANY else rule.analyte
    conversion = convert(Quantity(value, rule.from_unit), rule.to_unit, analyte)
    assert conversion.original == Quantity(value, rule.from_unit)
    assert conversion.factor == rule.factor
    exact = Decimal(value) * Decimal(rule.factor)  # may round in the default context...
    product = Decimal(conversion.converted.value)
    assert product == multiply_exactly(Decimal(value), Decimal(rule.factor))
    if len(exact.as_tuple().digits) < 28:  # ...so compare where the default context is exact
        assert product == exact
    assert check_decimal(conversion.converted.value) == conversion.converted.value
    assert conversion.converted.unit == rule.to_unit


@SETTINGS
@given(decimal_strings, st.sampled_from(["0.1", "1", "0.001"]))
def test_rounding_happens_only_where_a_rule_says_so_half_even(value: str, places: str) -> None:
    table = {(ANY, "mg/dL", "mmol/L"): Rule(ANY, "mg/dL", "mmol/L", "0.0555", places=places)}
    rounded = convert(Quantity(value, "mg/dL"), "mmol/L", "x", table=table).converted.value
    exact = multiply_exactly(Decimal(value), Decimal("0.0555"))
    assert Decimal(rounded) == exact.quantize(Decimal(places), rounding="ROUND_HALF_EVEN")
    assert Decimal(rounded).as_tuple().exponent == Decimal(places).as_tuple().exponent


@SETTINGS
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_no_float_can_get_in(number: float) -> None:
    with pytest.raises(InvalidQuantity):
        Quantity(number, "mg/dL")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuantity):
        Rule("glucose", "mg/dL", "mmol/L", number)  # type: ignore[arg-type]
    with pytest.raises(InvalidEntry, match="holds a float"):
        payload({"nested": [number]}, "detail")
    with pytest.raises(EncodeError, match="floats are not allowed"):
        CanonicalTranscoder().encode({"value": number})


@SETTINGS
@given(st.text(max_size=30))
def test_only_plain_decimal_strings_are_accepted(text: str) -> None:
    try:
        check_decimal(text)
    except InvalidQuantity:
        return
    # Accepted: its Decimal spells it back with the same digits, and it is finite.
    number = Decimal(text)
    assert number.is_finite()
    assert text.lstrip("+-").replace(".", "").isdigit() and text.isascii()
