from __future__ import annotations

from decimal import Decimal

import pytest

from domain.errors import ConversionNotDefined, InvalidQuantity
from domain.quantities import ANY, Quantity, Rule, check_unit, convert


def test_a_value_and_unit_are_kept_exactly_as_received() -> None:
    q = Quantity("5.2", "mg/dL")
    assert (q.value, q.unit) == ("5.2", "mg/dL")
    assert type(q.value) is str and type(q.unit) is str
    assert Quantity("0.10", "mmol/L").value == "0.10"
    assert Quantity("0.10", "mmol/L").decimal() == Decimal("0.10")


@pytest.mark.parametrize("value", [5.2, 5, Decimal("5.2"), None, b"5.2"])
def test_a_value_that_is_not_text_is_refused(value: object) -> None:
    with pytest.raises(InvalidQuantity, match="must be a decimal string, not"):
        Quantity(value, "mg/dL")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    ["", "5.", ".5", "5.2e1", "1E3", "NaN", "nan", "Infinity", "-inf", " 5.2", "5.2 ", "5.2\n",
     "5,2", "+-5", "١٢", "0x1A", "<5", "5.2.1", "1" * 65],
)  # fmt: skip
def test_a_value_that_is_not_a_plain_decimal_string_is_refused(value: str) -> None:
    with pytest.raises(InvalidQuantity, match="is not a decimal string"):
        Quantity(value, "mg/dL")


@pytest.mark.parametrize(
    "value", ["0", "-3", "+7", "5.2", "0.10", "000.0100", "12345678901234567890.5"]
)
def test_signed_and_zero_padded_decimal_strings_are_accepted_unchanged(value: str) -> None:
    assert Quantity(value, "1").value == value


@pytest.mark.parametrize(
    "unit", ["mg/dL", "mmol/L", "10*3/uL", "%", "[IU]/L", "mm[Hg]", "{cells}/uL", "/min", "1",
             "kg/m2", "umol/L", "g/(24.h)", "{beats}/min"],
)  # fmt: skip
def test_ucum_units_are_accepted_case_and_all(unit: str) -> None:
    assert check_unit(unit) == unit


@pytest.mark.parametrize(
    "unit", ["", "mg dL", "mg/dL ", "µg/L", "mg/\tdL", "[IU/L", "IU]/L", "{a{b}}", "g/(24.h",
             "g/24.h)", "{cells", "}", "[[x]]", "x" * 65],
)  # fmt: skip
def test_a_unit_that_is_not_ucum_syntax_is_refused(unit: str) -> None:
    with pytest.raises(InvalidQuantity):
        Quantity("1", unit)


def test_units_are_case_sensitive_so_mg_is_not_converted_as_mg_upper() -> None:
    with pytest.raises(InvalidQuantity, match="not a UCUM unit"):  # MG is no UCUM symbol
        convert(Quantity("5.2", "MG/DL"), "mmol/L", "glucose")


def test_glucose_converts_to_mmol_per_litre_exactly_by_the_tables_factor() -> None:
    conversion = convert(Quantity("5.2", "mg/dL"), "mmol/L", "2345-7")
    assert conversion.original == Quantity("5.2", "mg/dL")
    assert conversion.converted == Quantity("0.28860", "mmol/L")
    assert conversion.factor == "0.0555"
    assert conversion.rule == "glucose mg/dL->mmol/L x0.0555"
    assert Decimal(conversion.converted.value) == Decimal("5.2") * Decimal("0.0555")


def test_creatinine_converts_to_micromoles_and_millimoles_exactly() -> None:
    assert convert(Quantity("1.10", "mg/dL"), "umol/L", "2160-0").converted.value == "97.240"
    assert convert(Quantity("5.2", "mg/dL"), "mmol/L", "creatinine").converted.value == "0.45968"


def test_a_prefix_change_holds_for_any_analyte() -> None:
    conversion = convert(Quantity("5.2", "mg/dL"), "mg/L", "anything")
    assert conversion.converted == Quantity("52.0", "mg/L")
    assert conversion.rule == f"{ANY} mg/dL->mg/L x10"


def test_tiny_values_convert_without_exponent_notation() -> None:
    assert convert(Quantity("0.0000001", "mg/dL"), "mg/L", "x").converted.value == "0.0000010"


def test_an_unknown_conversion_raises_conversion_not_defined_naming_units_not_values() -> None:
    with pytest.raises(
        ConversionNotDefined, match=r"^no conversion from mg/dL to mmol/L for analyte 1234-5$"
    ) as e:
        convert(Quantity("5.2", "mg/dL"), "mmol/L", "1234-5")
    assert "5.2" not in str(e.value)


def test_nothing_is_rounded_unless_the_rule_says_so() -> None:
    table = {
        ("glucose", "mg/dL", "mmol/L"): Rule("glucose", "mg/dL", "mmol/L", "0.0555", places="0.1")
    }
    conversion = convert(Quantity("95", "mg/dL"), "mmol/L", "glucose", table=table)
    assert conversion.converted.value == "5.3"  # 5.2725, half-even to one place
    assert conversion.rule == "glucose mg/dL->mmol/L x0.0555, rounded half-even to 0.1"
    assert convert(Quantity("95", "mg/dL"), "mmol/L", "glucose").converted.value == "5.2725"


def test_a_rule_must_have_a_decimal_string_factor() -> None:
    with pytest.raises(InvalidQuantity):
        Rule("glucose", "mg/dL", "mmol/L", 0.0555)  # type: ignore[arg-type]
