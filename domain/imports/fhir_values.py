"""FHIR R4 values read without losing what the sender wrote: JSON numbers as their exact text,
dateTimes with their text and precision, quantities as decimal strings with their unit
(docs/IMPORTS.md §9). No I/O."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

# FHIR R4 dateTime (https://hl7.org/fhir/R4/datatypes.html#dateTime): a year, a month, a day,
# or a time to the second (fractions allowed) that MUST carry an offset.
DATETIME = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?:T(?P<H>[0-9]{2}):(?P<M>[0-9]{2}):(?P<S>[0-9]{2})(?P<f>\.[0-9]{1,9})?"
    r"(?P<z>Z|[+-][0-9]{2}:[0-9]{2}))?)?)?",
    re.ASCII,
)
# A FHIR decimal as JSON writes it (no exponent is refused: JSON allows one, FHIR too).
DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?", re.ASCII)
# The domain's decimal string (domain.quantities): the value as a lab or a form sends it.
PLAIN_DECIMAL = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?", re.ASCII)
ORIGINAL_TEXT = "https://chartledger.local/fhir/StructureDefinition/original-text"
ORIGINAL_TIME = "https://chartledger.local/fhir/StructureDefinition/original-time"


class Number(str):
    """A JSON number, kept as the characters the file holds (``5.20`` stays ``5.20``)."""


class NotFhirJson(ValueError):
    """A line that is not one JSON object (the message names the rule, never the text)."""


def read_json_line(line: bytes) -> dict[str, Any]:
    """One NDJSON line as a JSON object whose numbers are ``Number`` (their exact text)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise NotFhirJson("is not UTF-8") from None
    try:
        value = json.loads(text, parse_float=Number, parse_int=Number, object_pairs_hook=_unique)
    except _DuplicateKey as e:
        raise NotFhirJson(f"names the element {e.args[0]!r} twice") from None
    except ValueError:
        raise NotFhirJson("is not a JSON value (NDJSON holds one resource per line)") from None
    if type(value) is not dict:
        raise NotFhirJson("is not a JSON object (NDJSON holds one resource per line)")
    return value


class _DuplicateKey(ValueError):
    pass


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _DuplicateKey(key[:40])
        found[key] = value
    return found


@dataclass(frozen=True)
class FhirTime:
    """A FHIR date or dateTime: the text as sent, its precision and the value it reads as."""

    raw: str
    precision: str  # year | month | day | second
    value: date | datetime | None  # None for a year or a month alone

    @property
    def day(self) -> date | None:
        """The calendar day as the sender wrote it (a time's own date, not converted to UTC)."""
        if isinstance(self.value, datetime):
            return self.value.date()
        return self.value


def parse_time(raw: Any) -> FhirTime:
    """``raw`` read as a FHIR dateTime; ValueError (naming the rule) if it is not one."""
    if type(raw) is not str:
        raise ValueError("is not a FHIR dateTime (text)")
    m = DATETIME.fullmatch(raw)
    if m is None:
        raise ValueError("is not a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD or a time with offset)")
    year = int(m["y"])
    if m["m"] is None:
        return FhirTime(raw, "year", None)
    month = int(m["m"])
    if not 1 <= month <= 12:
        raise ValueError("is not a FHIR dateTime (no such month)")
    if m["d"] is None:
        return FhirTime(raw, "month", None)
    try:
        when = date(year, month, int(m["d"]))
    except ValueError:
        raise ValueError("is not a FHIR dateTime (no such day)") from None
    if m["H"] is None:
        return FhirTime(raw, "day", when)
    hour, minute, second = int(m["H"]), int(m["M"]), int(m["S"])
    if hour > 23 or minute > 59 or second > 60:
        raise ValueError("is not a FHIR dateTime (no such time of day)")
    second = min(second, 59)  # a leap second reads as the second before it; the text stays
    micro = int((m["f"] or ".0")[1:7].ljust(6, "0"))
    return FhirTime(
        raw,
        "second",
        datetime(
            when.year, when.month, when.day, hour, minute, second, micro, tzinfo=_zone(m["z"])
        ),
    )


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError("is not a FHIR dateTime (no such offset)")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def decimal_text(element: dict[str, Any], name: str) -> str:
    """A decimal element's value as received: the ``original-text`` extension of ``_<name>``
    when the sender kept the characters there (Chartledger does, for ``+0099.50``), else the
    JSON number's own text. ValueError (naming the rule) if it is not a decimal."""
    shadow = element.get("_" + name)
    if type(shadow) is dict:
        for ext in shadow.get("extension") or ():
            if type(ext) is dict and ext.get("url") == ORIGINAL_TEXT:
                text = ext.get("valueString")
                if type(text) is str and PLAIN_DECIMAL.fullmatch(text) and len(text) <= 64:
                    return text
    value = element.get(name)
    if type(value) is not Number:
        raise ValueError(f"{name} is not a JSON number")
    if not DECIMAL.fullmatch(value) or "e" in value.lower():
        raise ValueError(f"{name} is not a decimal without an exponent")
    if len(value) > 64:
        raise ValueError(f"{name} has more than 64 characters")
    return str(value)


def original_time(element: dict[str, Any]) -> str | None:
    """A time exactly as its first source gave it, when an exporter kept it in the
    ``original-time`` extension (Chartledger does, for HL7 and SMS times)."""
    for ext in element.get("extension") or ():
        if type(ext) is dict and ext.get("url") == ORIGINAL_TIME:
            text = ext.get("valueString")
            if type(text) is str and text:
                return text
    return None
