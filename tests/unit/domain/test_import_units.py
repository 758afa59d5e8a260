"""Units from imports (and every other way in) are checked against UCUM's table (domain/ucum.py)."""

from __future__ import annotations

import pytest

from domain.errors import InvalidQuantity
from domain.quantities import Quantity, check_unit


@pytest.mark.parametrize(
    "unit",
    ["mg/dL", "mmol/L", "10*3/uL", "10^9/L", "10*-3", "%", "[IU]/L", "[iU]", "mm[Hg]",
     "cm[H2O]", "{cells}/uL", "%{saturation}", "/min", "/[HPF]", "1", "kg/m2", "s-1",
     "g/(24.h)", "mL/min/{1.73_m2}", "fL", "pg", "[pH]", "meq/L", "mosm/kg", "ng/mL", "U/L",
     "kcal", "Cel", "[degF]", "wk", "mo", "a", "B[10.nV]", "[m/s2/Hz^(1/2)]", "KiBy"],
)  # fmt: skip
def test_ucum_units_of_known_symbols_are_accepted_as_sent(unit: str) -> None:
    assert check_unit(unit) == unit
    assert Quantity("5.2", unit).unit == unit


@pytest.mark.parametrize(
    ("unit", "why"),
    [
        ("MG/DL", "symbol not in UCUM's table"),
        ("mcg", "symbol not in UCUM's table"),
        ("IU/L", "symbol not in UCUM's table"),
        ("mmHg", "symbol not in UCUM's table"),
        ("cc", "symbol not in UCUM's table"),
        ("kmin", "symbol not in UCUM's table"),  # min is not metric: no prefix
        ("mg//dL", "operator where a unit symbol should be"),
        ("mg/", "operator where a unit symbol should be"),
        ("mg.", "operator where a unit symbol should be"),
    ],
)
def test_unknown_units_are_refused_naming_the_rule(unit: str, why: str) -> None:
    with pytest.raises(InvalidQuantity, match=f"^unit is not a UCUM unit: it has .*{why}"):
        check_unit(unit)
