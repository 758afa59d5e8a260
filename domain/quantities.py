"""Quantities: a decimal string next to its UCUM unit, kept exactly as received.

``"5.2"`` and ``"mg/dL"`` stay those very characters from the source message to the ledger and
back: no float is ever made of them (the ledger's canonical encoding refuses floats anyway).
Conversions are explicit and exact: :func:`convert` multiplies by a decimal factor taken from a
named table entry and returns a :class:`Conversion` that shows the original value, the converted
value, the factor and the rule, so a record can keep both. Nothing is rounded unless the rule says
so. UCUM: https://ucum.org/ucum (case-sensitive symbols, §2.1 character set).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import (
    ROUND_HALF_EVEN,
    Clamped,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any

from domain import ucum
from domain.errors import ConversionNotDefined, InvalidQuantity

MAX_LENGTH = 64
"""Longer values or units than this are refused: no lab sends a 65-digit result."""

DECIMAL_RE = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
_EXACT_TRAPS = [Inexact, Rounded, InvalidOperation, Overflow, Underflow, Subnormal, Clamped]


def check_decimal(value: Any, field: str = "value") -> str:
    """``value`` if it is a decimal string (optional sign, digits, optional fraction), else raise.

    Floats, ints, ``Decimal`` objects, exponents, NaN, infinities, spaces and non-ASCII digits are
    refused: the text must be the text that was received.
    """
    if type(value) is not str:
        raise InvalidQuantity(f"{field} must be a decimal string, not {type(value).__name__}")
    if len(value) > MAX_LENGTH or DECIMAL_RE.fullmatch(value) is None:
        raise InvalidQuantity(f"{field} is not a decimal string (sign, digits, optional fraction)")
    return value


def check_unit(unit: Any, field: str = "unit") -> str:
    """``unit`` if it is a UCUM unit, else raise.

    Printable ASCII without spaces (UCUM §2.1), brackets ``[]``, braces ``{}`` and parentheses
    balanced, no brackets inside an annotation and no annotation nested in another; then the
    expression must parse by UCUM's grammar with every symbol one of UCUM's atoms, prefixed only
    if metric (``domain/ucum.py``). Case matters (``mg`` is not ``MG``); the text is kept as
    received.
    """
    if type(unit) is not str:
        raise InvalidQuantity(f"{field} must be a UCUM unit string, not {type(unit).__name__}")
    if not unit or len(unit) > MAX_LENGTH:
        raise InvalidQuantity(f"{field} must be a UCUM unit of 1 to {MAX_LENGTH} characters")
    depth = 0
    in_brackets = in_braces = False
    for ch in unit:
        if not "!" <= ch <= "~":
            raise InvalidQuantity(f"{field} must be printable ASCII without spaces (UCUM)")
        if in_braces:
            if ch == "{":
                raise InvalidQuantity(f"{field} has a nested annotation")
            in_braces = ch != "}"
        elif ch == "{":
            in_braces = True
        elif ch == "}":
            raise InvalidQuantity(f"{field} closes an annotation it never opened")
        elif ch == "[":
            if in_brackets:
                raise InvalidQuantity(f"{field} has nested square brackets")
            in_brackets = True
        elif ch == "]":
            if not in_brackets:
                raise InvalidQuantity(f"{field} closes a square bracket it never opened")
            in_brackets = False
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise InvalidQuantity(f"{field} closes a parenthesis it never opened")
    if depth or in_brackets or in_braces:
        raise InvalidQuantity(f"{field} has an unclosed bracket, brace or parenthesis")
    try:
        ucum.check(unit)
    except ucum.NotUcum as e:
        raise InvalidQuantity(f"{field} is not a UCUM unit: it {e}") from None
    return unit


@dataclass(frozen=True)
class Quantity:
    """A decimal string and its UCUM unit, exactly as received."""

    value: str
    unit: str

    def __post_init__(self) -> None:
        check_decimal(self.value)
        check_unit(self.unit)

    def decimal(self) -> Decimal:
        """The exact number the value spells (``Decimal("0.10")`` keeps its trailing zero)."""
        return Decimal(self.value)

    def __str__(self) -> str:
        return f"{self.value} {self.unit}"


def checked(quantity: Any, field: str = "quantity") -> Quantity:
    """``quantity`` re-checked (a dataclass can be built around its checks), else raise."""
    if not isinstance(quantity, Quantity):
        raise InvalidQuantity(f"{field} must be a Quantity, not {type(quantity).__name__}")
    check_decimal(quantity.value, f"{field}.value")
    check_unit(quantity.unit, f"{field}.unit")
    return quantity


@dataclass(frozen=True)
class Rule:
    """One entry of a conversion table: multiply by ``factor``; round only if ``places`` is set.

    ``places`` is a decimal string giving the exponent to round to, half-even (``"0.01"``: two
    decimal places); ``None`` keeps the exact product.
    """

    analyte: str
    from_unit: str
    to_unit: str
    factor: str
    places: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        check_decimal(self.factor, "factor")
        check_unit(self.from_unit, "from_unit")
        check_unit(self.to_unit, "to_unit")
        if self.places is not None:
            check_decimal(self.places, "places")

    @property
    def name(self) -> str:
        rounded = "" if self.places is None else f", rounded half-even to {self.places}"
        return f"{self.analyte} {self.from_unit}->{self.to_unit} x{self.factor}{rounded}"


@dataclass(frozen=True)
class Conversion:
    """The original quantity, the converted one, the factor and the rule: both values, always."""

    original: Quantity
    converted: Quantity
    factor: str
    rule: str


ANY = "*"
"""The analyte of rules that hold for every analyte (a change of prefix or volume only)."""

ANALYTES_BY_LOINC: dict[str, str] = {
    "2345-7": "glucose",  # Glucose [Mass/volume] in Serum or Plasma
    "2339-0": "glucose",  # Glucose [Mass/volume] in Blood
    "2160-0": "creatinine",  # Creatinine [Mass/volume] in Serum or Plasma
    "2093-3": "cholesterol",  # Cholesterol [Mass/volume] in Serum or Plasma
    "2571-8": "triglycerides",  # Triglyceride [Mass/volume] in Serum or Plasma
    "3094-0": "urea nitrogen",  # Urea nitrogen [Mass/volume] in Serum or Plasma
    "17861-6": "calcium",  # Calcium [Mass/volume] in Serum or Plasma
    "3084-1": "uric acid",  # Urate [Mass/volume] in Serum or Plasma
}

_RULES = [
    # Analyte-specific factors (molar mass), each direction its own entry: no inverse is computed.
    Rule("glucose", "mg/dL", "mmol/L", "0.0555", source="1/18.016 (180.16 g/mol), as tabulated"),
    Rule("glucose", "mmol/L", "mg/dL", "18.016", source="180.16 g/mol"),
    Rule("creatinine", "mg/dL", "umol/L", "88.4", source="113.12 g/mol"),
    Rule("creatinine", "mg/dL", "mmol/L", "0.0884", source="113.12 g/mol"),
    Rule("creatinine", "umol/L", "mg/dL", "0.0113", source="113.12 g/mol, as tabulated"),
    Rule("cholesterol", "mg/dL", "mmol/L", "0.02586", source="386.65 g/mol"),
    Rule("triglycerides", "mg/dL", "mmol/L", "0.01129", source="885.7 g/mol (triolein)"),
    Rule("urea nitrogen", "mg/dL", "mmol/L", "0.357", source="28.014 g/mol (N2)"),
    Rule("calcium", "mg/dL", "mmol/L", "0.2495", source="40.08 g/mol"),
    Rule("uric acid", "mg/dL", "umol/L", "59.48", source="168.11 g/mol"),
    # Same quantity, other prefix or volume: exact powers of ten.
    Rule(ANY, "mg/dL", "mg/L", "10"),
    Rule(ANY, "mg/L", "mg/dL", "0.1"),
    Rule(ANY, "mg/dL", "g/L", "0.01"),
    Rule(ANY, "g/dL", "g/L", "10"),
    Rule(ANY, "g/L", "g/dL", "0.1"),
    Rule(ANY, "umol/L", "mmol/L", "0.001"),
    Rule(ANY, "mmol/L", "umol/L", "1000"),
    Rule(ANY, "ng/mL", "ug/L", "1"),
    Rule(ANY, "kg", "g", "1000"),
    Rule(ANY, "g", "kg", "0.001"),
    Rule(ANY, "cm", "m", "0.01"),
    Rule(ANY, "m", "cm", "100"),
]

CONVERSIONS: dict[tuple[str, str, str], Rule] = {
    (r.analyte, r.from_unit, r.to_unit): r for r in _RULES
}
"""The conversion table, keyed by (analyte, from unit, to unit); ``ANY`` rules hold for all."""


def analyte_of(code_or_name: str) -> str:
    """The table's analyte name for a LOINC code or a name (names compare case-insensitively)."""
    return ANALYTES_BY_LOINC.get(code_or_name, code_or_name.strip().lower())


def multiply_exactly(value: Decimal, factor: Decimal) -> Decimal:
    """``value * factor`` with enough precision that nothing can be rounded (a trap if it were)."""
    digits = len(value.as_tuple().digits) + len(factor.as_tuple().digits)
    context = Context(prec=digits + 1, Emax=10**6, Emin=-(10**6), traps=_EXACT_TRAPS)
    return context.multiply(value, factor)


def plain(number: Decimal) -> str:
    """A decimal string without exponent: ``Decimal("1E-7")`` → ``"0.0000001"``."""
    return format(number, "f")


def convert(
    quantity: Quantity,
    to_unit: str,
    analyte: str,
    table: dict[tuple[str, str, str], Rule] | None = None,
) -> Conversion:
    """Convert ``quantity`` to ``to_unit`` by the table's rule for ``analyte`` (LOINC or name).

    Looks up (analyte, from, to), then (``ANY``, from, to); raises :class:`ConversionNotDefined`
    if neither exists. The product is exact; it is rounded (half-even) only if the rule says so.
    """
    check_unit(to_unit, "to_unit")
    rules = CONVERSIONS if table is None else table
    name = analyte_of(analyte)
    rule = rules.get((name, quantity.unit, to_unit)) or rules.get((ANY, quantity.unit, to_unit))
    if rule is None:
        raise ConversionNotDefined(
            f"no conversion from {quantity.unit} to {to_unit} for analyte {analyte}"
        )
    factor = Decimal(rule.factor)
    product = multiply_exactly(quantity.decimal(), factor)
    if rule.places is not None:
        exponent = Decimal(rule.places)
        context = Context(prec=len(product.as_tuple().digits) + 2, traps=[InvalidOperation])
        product = product.quantize(exponent, rounding=ROUND_HALF_EVEN, context=context)
    return Conversion(
        original=quantity,
        converted=Quantity(plain(product), to_unit),
        factor=rule.factor,
        rule=rule.name,
    )


__all__ = [
    "ANY",
    "CONVERSIONS",
    "Conversion",
    "Quantity",
    "Rule",
    "analyte_of",
    "check_decimal",
    "check_unit",
    "checked",
    "convert",
]
