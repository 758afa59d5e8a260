"""Times as their source wrote them: HL7 v2 TS, an email's RFC 5322 date-time, an SMS export's
epoch milliseconds, or an ISO 8601 / FHIR dateTime typed into the API (docs/IMPORTS.md §11).

The ledger keeps the text exactly as received (a lab's ``collected_at``, an email's header
fields, an SMS's ``sent_at``); this module reads it, the same way every time, into the precision
and the offset that were sent. Nothing is invented: a time sent without an offset stays local
time (``offset`` None, no ``instant``), and its FHIR form keeps only its date, the one precision
FHIR's dateTime allows without an offset. No I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import cached_property, lru_cache

from domain.errors import InvalidEntry

PRECISIONS = ("year", "month", "day", "hour", "minute", "second", "fraction")
HL7_TS = "HL7 v2 TS"
RFC5322 = "RFC 5322 date-time"
EPOCH_MS = "epoch milliseconds"
ISO8601 = "ISO 8601"
# YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ], HL7 v2.5 §2.A.75; a trailing ^precision component
# (deprecated since 2.3) is read past, and kept in the raw text.
_HL7 = re.compile(
    r"([0-9]{4})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})(?:([0-9]{2})"
    r"(?:\.([0-9]+))?)?)?)?)?)?([+-][0-9]{4})?(?:\^[A-Z]?)?",
    re.ASCII,
)
_ISO = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})"
    r"(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?",
    re.ASCII,
)
_MILLIS = re.compile(r"-?[0-9]{1,15}", re.ASCII)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FHIR_FRACTION = 9  # FHIR dateTime's regex takes at most 9 fractional digits


class InvalidTime(InvalidEntry):
    """A time whose text is not of the form its source promises."""


@dataclass(frozen=True)
class OriginalTime:
    """One source time: ``raw`` exactly as received, and what it says.

    ``local`` is ISO 8601 at the precision sent (``2026-11-20T07:15``, ``2026-11``), fraction
    digits as sent; ``offset`` is ``+HH:MM`` when the source gave one; ``instant`` is then the
    moment in UTC (the ledger's timestamp form, microseconds truncated)."""

    raw: str
    form: str
    local: str
    precision: str
    offset: str | None

    @property
    def instant(self) -> str | None:
        if self.offset is None:
            return None
        return _ledger_timestamp(self.moment())

    def moment(self) -> datetime:
        """The instant as an aware datetime (a time without an offset has none: InvalidTime)."""
        if self.offset is None:
            raise InvalidTime("has no offset: it is local time of an unknown zone")
        return _padded(self.local).replace(tzinfo=_zone(self.offset))

    @cached_property  # a frozen dataclass keeps its __dict__: the value is stored once
    def fhir(self) -> str:
        """A FHIR dateTime: the date alone at day precision or coarser, or when no offset was
        sent; else seconds and the offset (hour and minute precision get ``:00``)."""
        if self.precision in ("year", "month", "day") or self.offset is None:
            return self.local[:10]
        date_time = _padded(self.local).strftime("%Y-%m-%dT%H:%M:%S")
        fraction = self.local.partition(".")[2][:_FHIR_FRACTION]
        utc_named = self.form == EPOCH_MS or (self.form == ISO8601 and self.raw.endswith("Z"))
        offset = "Z" if utc_named else self.offset
        return date_time + (f".{fraction}" if fraction else "") + offset

    def as_dict(self) -> dict[str, str | None]:
        return {
            "raw": self.raw,
            "form": self.form,
            "local": self.local,
            "precision": self.precision,
            "offset": self.offset,
            "instant": self.instant,
            "fhir": self.fhir,
        }


def parse_hl7_ts(raw: str) -> OriginalTime:
    """An HL7 v2 TS/DTM, at any precision, with or without its offset."""
    found = _HL7.fullmatch(raw) if type(raw) is str else None
    if found is None:
        raise InvalidTime("is not an HL7 TS (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ])")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    offset = None if zone is None else f"{zone[:3]}:{zone[3:]}"
    return _checked(raw, HL7_TS, (year, month, day, hour, minute, second, fraction), offset)


def parse_iso(raw: str) -> OriginalTime:
    """An ISO 8601 date or date-time in FHIR's dateTime shape (offset optional here)."""
    found = _ISO.fullmatch(raw) if type(raw) is str else None
    if found is None:
        raise InvalidTime("is not an ISO 8601 date-time")
    year, month, day, hour, minute, second, fraction, zone = found.groups()
    offset = None if zone is None else ("+00:00" if zone == "Z" else zone)
    return _checked(raw, ISO8601, (year, month, day, hour, minute, second, fraction), offset)


def parse_epoch_millis(raw: str) -> OriginalTime:
    """Milliseconds since 1970-01-01T00:00:00Z, as an SMS export writes them."""
    if type(raw) is not str or _MILLIS.fullmatch(raw) is None:
        raise InvalidTime("is not a time in milliseconds since 1970")
    try:
        moment = _EPOCH + timedelta(milliseconds=int(raw))
    except OverflowError:
        raise InvalidTime("milliseconds since 1970 past year 9999") from None
    local = moment.replace(tzinfo=None).isoformat(timespec="milliseconds")
    return OriginalTime(raw, EPOCH_MS, local, "fraction", "+00:00")


def parse_email_date(raw: str) -> OriginalTime:
    """An RFC 5322 §3.3 date-time (obsolete forms too). ``-0000`` says the local zone is not
    known and the time is UTC (§3.3), so it is read as ``+00:00``."""
    text = " ".join(raw.split()) if type(raw) is str else ""
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        raise InvalidTime("is not an RFC 5322 date-time") from None
    if moment.tzinfo is None:  # -0000
        moment = moment.replace(tzinfo=UTC)
    offset = _offset_text(moment.utcoffset() or timedelta(0))
    has_seconds = re.search(r"[0-9]{1,2}:[0-9]{2}:[0-9]{2}", text) is not None
    precision = "second" if has_seconds else "minute"
    spec = "seconds" if has_seconds else "minutes"
    local = moment.replace(tzinfo=None).isoformat(timespec=spec)
    return OriginalTime(raw, RFC5322, local, precision, offset)


@lru_cache(maxsize=4096)
def read_time(raw: str) -> OriginalTime | None:
    """A lab's time as any source gave it: HL7 TS, else ISO 8601; None if it is neither (the
    text is still kept, and travels as text). The results of one message share one time, so a
    reading is kept for the next (a reading is immutable)."""
    for parse in (parse_hl7_ts, parse_iso):
        try:
            return parse(raw)
        except InvalidTime:
            continue
    return None


def received_header_time(headers: list[list[str]]) -> OriginalTime | None:
    """When the practice's own mail server took the message: the date-time after the last
    ``;`` of the topmost ``Received:`` field (RFC 5321 §4.4), the last hop prepends its own."""
    for name, value in headers:
        if name.lower() != "received":
            continue
        _, semicolon, when = value.rpartition(";")
        if not semicolon:
            return None
        try:
            return parse_email_date(when.strip())
        except InvalidTime:
            return None
    return None


def header_time(headers: list[list[str]], field: str) -> OriginalTime | None:
    """The first ``field`` header read as an RFC 5322 date-time, or None."""
    for name, value in headers:
        if name.lower() == field.lower():
            try:
                return parse_email_date(value)
            except InvalidTime:
                return None
    return None


def _checked(
    raw: str, form: str, parts: tuple[str | None, ...], offset: str | None
) -> OriginalTime:
    year, month, day, hour, minute, second, fraction = parts
    present = [p for p in (year, month, day, hour, minute, second) if p is not None]
    precision = PRECISIONS[len(present) - 1] if fraction is None else "fraction"
    local = year or ""
    for separator, part in (("-", month), ("-", day), ("T", hour), (":", minute), (":", second)):
        if part is not None:
            local += separator + part
    if fraction is not None:
        local += f".{fraction}"
    if offset is not None:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise InvalidTime("has an offset out of range")
    try:
        _padded(local)
    except ValueError:
        raise InvalidTime("is not a date and time on the calendar") from None
    return OriginalTime(raw, form, local, precision, offset)


def _padded(local: str) -> datetime:
    """``local`` as a naive datetime, absent parts as their first value (fraction to µs)."""
    date_part, _, time_part = local.partition("T")
    pieces = [*date_part.split("-"), "01", "01"]
    year, month, day = int(pieces[0]), int(pieces[1]), int(pieces[2])
    clock, _, fraction = time_part.partition(".")
    hms = [int(p) for p in clock.split(":")] if clock else []
    hms += [0] * (3 - len(hms))
    micro = int((fraction + "000000")[:6]) if fraction else 0
    return datetime(year, month, day, hms[0], hms[1], hms[2], micro)


def _zone(offset: str) -> timezone:
    sign = -1 if offset[0] == "-" else 1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _ledger_timestamp(moment: datetime) -> str:
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"
