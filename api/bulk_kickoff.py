"""A Bulk Data kick-off request read and checked (HL7 Bulk Data Access IG v2, "Bulk Data Kick-off
Request"): its headers (``Prefer: respond-async``, ``Accept``) and its parameters (``_type``,
``_since``, ``_outputFormat``). Anything wrong is ``KickOffRefused`` (400), an OperationOutcome
under /fhir; nothing is recorded or started before these checks pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from projections.ehi_export import RESOURCE_TYPES, ExportError
from verify.canonical import format_timestamp

OUTPUT_FORMATS = ("application/fhir+ndjson", "application/ndjson", "ndjson")
ACCEPTED = ("application/fhir+json", "application/json", "*/*", "application/*")
# Kick-off parameters of the IG this server does not offer: refused, unless the client asks for
# lenient handling (``Prefer: handling=lenient``), when they are ignored.
UNSUPPORTED = ("_typeFilter", "_elements", "patient", "includeAssociatedData", "_until")


class KickOffRefused(ExportError):
    """A kick-off the IG or this server does not allow: the message says which part."""


@dataclass(frozen=True)
class KickOff:
    types: frozenset[str] | None  # None: every type
    since: str | None  # in the ledger's timestamp form


def kick_off(headers: Mapping[str, str], params: Mapping[str, Sequence[str]]) -> KickOff:
    """The kick-off's choices, or ``KickOffRefused`` naming what is wrong."""
    prefer = [p.strip().lower() for p in headers.get("prefer", "").split(",")]
    if "respond-async" not in prefer:
        raise KickOffRefused("a Bulk Data kick-off needs the header Prefer: respond-async")
    accept = headers.get("accept", "")
    if accept and not any(a.split(";")[0].strip() in ACCEPTED for a in accept.split(",")):
        raise KickOffRefused("a kick-off's Accept must allow application/fhir+json")
    lenient = "handling=lenient" in prefer
    for name in UNSUPPORTED:
        if params.get(name) and not lenient:
            raise KickOffRefused(f"the kick-off parameter {name} is not supported")
    for value in params.get("_outputFormat", ()):
        if value not in OUTPUT_FORMATS:
            raise KickOffRefused("_outputFormat must be application/fhir+ndjson")
    return KickOff(_types(params.get("_type", ())), _since(params.get("_since", ())))


def _types(values: Sequence[str]) -> frozenset[str] | None:
    named = [t.strip() for value in values for t in value.split(",") if t.strip()]
    if not values:
        return None
    unknown = sorted({t for t in named if t not in RESOURCE_TYPES})
    if unknown or not named:
        raise KickOffRefused(
            f"_type names resource types this export does not have: {', '.join(unknown) or '-'}"
            f" (it has {', '.join(RESOURCE_TYPES)})"
        )
    return frozenset(named)


def _since(values: Sequence[str]) -> str | None:
    if not values:
        return None
    if len(values) > 1:
        raise KickOffRefused("_since may be given once")
    text = values[0].strip()
    try:  # RFC 3339 as Python reads it; a FHIR instant is one
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.utcoffset() is None or "T" not in text.upper():
        raise KickOffRefused("_since must be a FHIR instant, e.g. 2026-12-01T00:00:00Z")
    try:
        return format_timestamp(moment)
    except OverflowError:  # at the very start of the calendar: everything is since then
        return None
