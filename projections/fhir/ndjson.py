"""FHIR JSON text with decimals spelled exactly as received (docs/EHI_EXPORT.md §4).

FHIR's JSON puts a decimal as a JSON number, and a JSON encoder would make that number from a
float, which loses digits (``5.20`` becomes ``5.2``; 20 digits become 17). So decimals travel
as :class:`Number`, holding the JSON number's own characters, and :func:`dumps` writes them
unquoted. Everything else is written as the standard library would (ASCII, no spaces).

Everything goes through the standard library's C encoder, which calls back for any object it
does not know: a Number is then written as a marker string (a NUL and 32 random hex digits, drawn
per process), and each quoted marker in the text is replaced by its number, in order. Should the
text hold more quoted markers than there were numbers (a string that spells the marker), the
resource is written again by the small writer here, which needs no marker.
"""

from __future__ import annotations

import json
import re
import secrets
from json.encoder import encode_basestring_ascii
from typing import Any

JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?", re.ASCII)
LEDGER_DECIMAL = re.compile(r"([+-]?)([0-9]+)((?:\.[0-9]+)?)", re.ASCII)


class Number:
    """A JSON number's exact text (``"5.20"``), written by :func:`dumps` without quotes."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        if type(text) is not str or JSON_NUMBER.fullmatch(text) is None:
            raise ValueError("not a JSON number in plain decimal form")
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Number) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return f"Number({self.text!r})"


MARK = "\x00" + secrets.token_hex(16)
QUOTED_MARK = encode_basestring_ascii(MARK)


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
    numbers: list[str] = []

    def mark(found: Any) -> str:
        if type(found) is not Number:
            raise TypeError(f"cannot write {type(found).__name__} as FHIR JSON")
        numbers.append(found.text)
        return MARK

    text = json.JSONEncoder(separators=(",", ":"), default=mark, allow_nan=False).encode(value)
    if not numbers:
        return text
    pieces = text.split(QUOTED_MARK)
    if len(pieces) != len(numbers) + 1:
        return slow_dumps(value)
    joined = [pieces[0]]
    for number, piece in zip(numbers, pieces[1:], strict=True):
        joined += (number, piece)
    return "".join(joined)


def slow_dumps(value: Any) -> str:
    """:func:`dumps`'s text, written node by node (no marker)."""
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
        out(value.text)
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
