"""Field checks shared by the aggregates' commands (never by their event bodies).

Each returns the value it checked, so a command reads ``text(name, "name")``. Failures raise
``InvalidEntry`` naming the field, never the value.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.errors import InvalidEntry


def text(value: Any, field: str) -> str:
    """A non-empty string (kept exactly as given: no stripping)."""
    if type(value) is not str or not value.strip():
        raise InvalidEntry(f"{field} must be non-empty text")
    return value


def optional_text(value: Any, field: str) -> str | None:
    return None if value is None else text(value, field)


def identifier(value: Any, field: str) -> UUID:
    if not isinstance(value, UUID):
        raise InvalidEntry(f"{field} must be a UUID")
    return value


def optional_identifier(value: Any, field: str) -> UUID | None:
    return None if value is None else identifier(value, field)


def moment(value: Any, field: str) -> datetime:
    """A timezone-aware datetime."""
    if type(value) is not datetime or value.utcoffset() is None:
        raise InvalidEntry(f"{field} must be a timezone-aware datetime")
    return value


def day(value: Any, field: str) -> date:
    """A calendar date (a datetime is not a date here)."""
    if type(value) is not date:
        raise InvalidEntry(f"{field} must be a date")
    return value


def optional_day(value: Any, field: str) -> date | None:
    return None if value is None else day(value, field)


def choice(value: Any, field: str, options: Iterable[str]) -> str:
    if type(value) is not str or value not in tuple(options):
        raise InvalidEntry(f"{field} must be one of {', '.join(options)}")
    return value


def raw_bytes(value: Any, field: str) -> bytes:
    if type(value) is not bytes:
        raise InvalidEntry(f"{field} must be bytes exactly as received")
    return value


_SCALARS = (type(None), bool, int, str, bytes, UUID, Decimal, date)


def payload(value: Any, field: str) -> Any:
    """A value the ledger can encode: no floats, str map keys, aware datetimes, nothing else."""
    kind = type(value)
    if kind is float:
        raise InvalidEntry(f"{field} holds a float: send numbers as decimal strings or Decimal")
    if kind is datetime:
        moment(value, field)
    elif kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise InvalidEntry(f"{field} has a map key that is not text")
            payload(item, f"{field}.{key}")
    elif kind is list or kind is tuple:
        for i, item in enumerate(value):
            payload(item, f"{field}[{i}]")
    elif not isinstance(value, _SCALARS):
        raise InvalidEntry(f"{field} holds a {kind.__name__}, which the ledger cannot encode")
    return value
