"""FHIR JSON text with decimals spelled exactly as received (docs/EHI_EXPORT.md §4).

FHIR's JSON puts a decimal as a JSON number, and a JSON encoder would make that number from a
float, which loses digits (``5.20`` becomes ``5.2``; 20 digits become 17). So decimals travel
as :class:`Number`, a ``str`` holding the JSON number's own characters, and :func:`dumps` writes
them unquoted. Everything else is written as the standard library would (ASCII, no spaces).
"""

from __future__ import annotations

import re
from json.encoder import encode_basestring_ascii
from typing import Any

JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)
LEDGER_DECIMAL = re.compile(r"([+-]?)([0-9]+)((?:\.[0-9]+)?)", re.ASCII)


class Number(str):
    """A JSON number's exact text (``"5.20"``), written by :func:`dumps` without quotes."""

    __slots__ = ()

    def __new__(cls, text: str) -> Number:
        if JSON_NUMBER.fullmatch(text) is None:
            raise ValueError("not a JSON number in plain decimal form")
        return super().__new__(cls, text)


def json_decimal(text: str) -> tuple[Number, bool]:
    """The JSON number for a ledger decimal string, and whether it differs from ``text``.

    A ledger decimal (optional sign, digits, optional fraction) is already a JSON number unless
    it has a ``+`` sign or leading zeros; those are dropped and nothing else: every fraction digit,
    trailing zeros included, stays. ``"-0"`` stays ``-0``.
    """
    match = LEDGER_DECIMAL.fullmatch(text)
    if match is None:
        raise ValueError("not a ledger decimal string")
    sign, whole, fraction = match.groups()
    number = ("-" if sign == "-" else "") + (whole.lstrip("0") or "0") + fraction
    return Number(number), number != text


def dumps(value: Any) -> str:
    """``value`` (dicts, lists, str, :class:`Number`, int, bool, None) as compact JSON text."""
    parts: list[str] = []
    _write(value, parts.append)
    return "".join(parts)


def _write(value: Any, out: Any) -> None:
    kind = type(value)
    if kind is str:
        out(encode_basestring_ascii(value))
    elif kind is dict:
        out("{")
        first = True
        for key, item in value.items():
            if not first:
                out(",")
            first = False
            out(encode_basestring_ascii(key))
            out(":")
            _write(item, out)
        out("}")
    elif kind is list:
        out("[")
        for n, item in enumerate(value):
            if n:
                out(",")
            _write(item, out)
        out("]")
    elif kind is Number:
        out(value)
    elif value is True:
        out("true")
    elif value is False:
        out("false")
    elif value is None:
        out("null")
    elif kind is int:
        out(str(value))
    else:
        raise TypeError(f"cannot write {kind.__name__} as FHIR JSON")
