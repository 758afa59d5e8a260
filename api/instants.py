"""RFC 3339 instants as the audit queries take them (``since``, ``until``).

An instant must say its offset (``Z`` or ``±hh:mm``): a time without one names no instant, and
the ledger will not guess the zone. It is normalised to the ledger's one timestamp form (UTC,
six fractional digits, ``Z``: ``verify.canonical.format_timestamp``), which sorts as text, so
``2026-12-07T01:20:00-05:00`` and ``2026-12-07T06:20:00Z`` select the same rows.

More than six fractional digits are rounded up to the next microsecond: the ledger's times are
whole microseconds, so an event is at or after ``…00.0000005Z`` exactly when it is at or after
``…00.000001Z`` (and before it exactly when before that), for ``since`` and ``until`` alike.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated

from fastapi import Query
from pydantic import AfterValidator

from verify.canonical import format_timestamp

# RFC 3339 §5.6 date-time (its "T", "Z" may be lower case, §5.6 note), offset required.
PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
_FORM = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
EXAMPLE = "2026-11-25T06:45:05Z"


class NotAnInstant(ValueError):
    """Not an RFC 3339 date-time with an offset. The message never repeats the value."""


def normalise_instant(text: str) -> str:
    """``text`` (an RFC 3339 date-time with its offset) as a ledger timestamp; else
    ``NotAnInstant``."""
    found = _FORM.fullmatch(text) if type(text) is str else None
    if found is None:
        raise NotAnInstant(
            f"not an RFC 3339 date-time with an offset (Z or ±hh:mm), e.g. {EXAMPLE}"
        )
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = found.groups()
    digits = fraction or ""
    micro = int(digits[:6].ljust(6, "0"))
    round_up = digits[6:].strip("0") != ""  # not int(): a long enough run of digits is refused
    try:
        if int(off_h or 0) > 23 or int(off_m or 0) > 59:
            raise ValueError("no such offset")
        offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
        if sign == "-":
            offset = -offset
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micro,
            tzinfo=timezone(offset),
        )
        moment = moment.astimezone(UTC)
        if round_up:
            moment += timedelta(microseconds=1)
        return format_timestamp(moment)
    except (ValueError, OverflowError):
        # Month 13, minute 60, a leap second (Python has none), or beyond year 1..9999 in UTC.
        raise NotAnInstant(
            "not a valid date-time: no such date or time, or outside years 1 to 9999 in UTC"
        ) from None


def _checked(text: str | None) -> str | None:
    return None if text is None else normalise_instant(text)


# A query parameter holding an instant: the pattern and ``format: date-time`` tell the OpenAPI
# reader what is taken; anything else is a 422 validation problem (naming the field, never the
# value), and what the route gets is the ledger timestamp.
InstantQuery = Annotated[
    str | None,
    Query(
        pattern=PATTERN,
        json_schema_extra={"format": "date-time", "examples": [EXAMPLE]},
        description="an RFC 3339 date-time with its offset (Z or ±hh:mm), compared as an instant",
    ),
    AfterValidator(_checked),
]
