"""Communication and Encounter for what an import kept as the source wrote it: a message of
an ``imported`` thread and an imported encounter (docs/EHI_EXPORT.md §5.3, §5.10).

They go out as they came in: the payload's text and bytes exactly, the times as the source's
text, the parties as the source named them, the source's id as an identifier. A party that
was a patient of the import is referenced as that patient here; any other reference (a source
practitioner, never a practice user) becomes an identifier under the source system, with its
type and display, because this export holds no resource it could resolve to.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from projections.fhir.common import (
    Tracked,
    base64_of,
    patient_named,
    patient_ref,
    uri_identifier,
)


def source_identifier(source: str, resource_type: str, resource_id: str) -> dict[str, str]:
    """The source's id of what an import kept: ``<Type>/<id>`` under the source system."""
    return {"system": source, "value": f"{resource_type}/{resource_id}"}


def party_ref(party: dict[str, str], source: str, known: Container[str]) -> dict[str, Any]:
    """A sender, recipient or participant as the source named it (see the module's note)."""
    found: dict[str, Any]
    if "patient" in party:
        found = patient_named(party["patient"], known)
    else:
        found = {}
        kind = party.get("type")
        if kind is None and "reference" in party:
            head = party["reference"].split("/_history/")[0].rpartition("/")[0]
            last = head.rpartition("/")[2]
            kind = last if last[:1].isupper() and last.isalpha() else None
        if kind is not None:
            found["type"] = kind
        if "value" in party:
            found["identifier"] = {
                **({"system": party["system"]} if "system" in party else {}),
                "value": party["value"],
            }
        elif "reference" in party:
            found["identifier"] = {"system": source, "value": party["reference"]}
    if "display" in party:
        found["display"] = party["display"]
    return found


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if "text" in part:
        return {"contentString": part["text"]}
    attachment: dict[str, Any] = {}
    if "media_type" in part:
        attachment["contentType"] = part["media_type"]
    attachment["data"] = base64_of(part["data"])
    if "title" in part:
        attachment["title"] = part["title"]
    return {"contentAttachment": attachment}


def imported_message(
    resource: dict[str, Any],
    thread: Any,
    event: Any,
    subject: dict[str, Any],
    known: Container[str],
) -> dict[str, Any]:
    """Complete ``resource`` (its id and the thread's identifier already set) from one
    ``CommunicationImported`` event."""
    resource["identifier"].append(
        source_identifier(event.source, "Communication", event.resource_id)
    )
    resource["status"] = event.status
    if event.category:
        resource["category"] = list(event.category)
    if event.medium:
        resource["medium"] = list(event.medium)
    resource["subject"] = subject
    if event.topic is not None:
        resource["topic"] = {"text": event.topic}
    for element in ("sent", "received"):
        if getattr(event, element) is not None:
            resource[element] = getattr(event, element)
    if event.recipients:
        resource["recipient"] = [party_ref(r, event.source, known) for r in event.recipients]
    if event.sender is not None:
        resource["sender"] = party_ref(event.sender, event.source, known)
    if event.reason:
        resource["reasonCode"] = list(event.reason)
    if event.parts:
        resource["payload"] = [_part(p) for p in event.parts]
    return resource


def imported_encounter(record: Tracked, known: Container[str]) -> dict[str, Any]:
    """An imported encounter as the source wrote it; it claims no profile (US Core's needs
    what another system's encounter may not have, e.g. a type)."""
    e = record.state
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": record.id,
        "meta": record.meta,
        "identifier": [
            source_identifier(e.source, "Encounter", e.resource_id),
            uri_identifier(record.id),
        ],
        "status": e.status,
        "class": dict(e.encounter_class),
    }
    if e.types:
        resource["type"] = list(e.types)
    resource["subject"] = patient_ref(e.patient_id)
    participants = []
    for p in e.participants:
        shown: dict[str, Any] = {}
        if "type" in p:
            shown["type"] = list(p["type"])
        if "individual" in p:
            shown["individual"] = party_ref(p["individual"], e.source, known)
        participants.append(shown)
    if participants:
        resource["participant"] = participants
    period = {
        end: value
        for end, value in (("start", e.period_start), ("end", e.period_end))
        if value is not None
    }
    if period:
        resource["period"] = period
    if e.reasons:
        resource["reasonCode"] = list(e.reasons)
    return resource
