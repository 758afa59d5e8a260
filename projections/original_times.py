"""The source times a view shows next to the time the ledger recorded (docs/IMPORTS.md §11):
a lab's collection time, an ingested email's Date and Received times, an SMS's sent time. Each
is the text as received (``raw``) and what it says (``domain.original_times``); a text no
reader can place is shown as its ``raw`` alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.original_times import (
    OriginalTime,
    parse_email_date,
    read_time,
    received_header_time,
)
from projections.fhir.communications import sms_time

TimeView = dict[str, str | None]


def entry_times(kind: str, state: Mapping[str, Any]) -> dict[str, TimeView]:
    """A chart entry's source times, by name: ``collected`` for a lab result."""
    raw = state.get("collected_at") if kind == "LabResult" else None
    return {} if raw is None else {"collected": _view(raw, read_time(raw))}


def message_times(kind: str, fields: Mapping[str, Any]) -> dict[str, TimeView]:
    """An ingested message's source times: ``sent`` (an email's Date, an SMS's sent time, an
    imported Communication's sent) and ``received`` (an email's topmost Received stamp, an
    imported Communication's received)."""
    found: dict[str, TimeView] = {}
    if kind == "email":
        headers = fields.get("headers") or []
        date = next((v for n, v in headers if n.lower() == "date"), None)
        if date is not None:
            found["sent"] = _view(date.strip(), _or_none(parse_email_date, date.strip()))
        received = received_header_time(headers)
        if received is not None:
            found["received"] = received.as_dict()
    elif kind == "sms" and fields.get("sent_at") is not None:
        found["sent"] = _view(fields["sent_at"], sms_time(fields["sent_at"]))
    elif kind == "imported":
        # An imported Communication's sent and received, FHIR dateTimes as the source wrote them.
        for name in ("sent", "received"):
            if fields.get(name) is not None:
                found[name] = _view(fields[name], read_time(fields[name]))
    return found


def _view(raw: str, parsed: OriginalTime | None) -> TimeView:
    return {"raw": raw} if parsed is None else parsed.as_dict()


def _or_none(parse: Any, raw: str) -> OriginalTime | None:
    try:
        return parse(raw)
    except ValueError:
        return None
