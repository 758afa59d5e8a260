"""Communication: secure messages, ingested email and SMS, imported Communications
(``projections.fhir.imported``), and the letters of a HIPAA amendment request (the request,
the acceptance or denial, the disagreement, the rebuttal) (docs/EHI_EXPORT.md §5.10-§5.11)."""

from __future__ import annotations

import base64
from collections.abc import Callable, Container, Iterator
from datetime import date
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

from domain.original_times import (
    OriginalTime,
    header_time,
    parse_epoch_millis,
    read_time,
    received_header_time,
)
from projections.fhir.common import (
    EXT,
    Tracked,
    base64_of,
    coded,
    instant,
    original_time,
    patient_named,
    patient_ref,
    subset_id,
    subsetted,
    target_ref,
    uri_identifier,
    user_ref,
)
from projections.fhir.imported import imported_message
from projections.fhir.ndjson import JSON_NUMBER, Number, dumps

MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIUM = {"secure": ("ONLINEWRIT", "online written"), "email": ("EMAILWRIT", "email")}
DENIAL_BASIS = EXT.replace("StructureDefinition", "CodeSystem") + "hipaa-164-526-denial-basis"
LETTERS = uuid5(UUID(int=0), "chartledger amendment letters")
RECORDED = EXT + "recorded-time"  # when the ledger recorded an ingested message: its import


class _Everyone:
    """Every patient is known: the default when the caller holds every Patient resource."""

    def __contains__(self, item: object) -> bool:
        return True


ALL = _Everyone()


def letter_id(request_id: str, letter: str) -> str:
    """The id of one letter of an amendment request: stable across exports."""
    return str(uuid5(LETTERS, f"{request_id}/{letter}"))


def _thread_parts(thread: Any, allowed: Callable[[str], bool]) -> tuple[list[str], list[str]]:
    patients = [f"patient:{p}" for p in thread.patient_ids if allowed(f"patient:{p}")]
    users = [f"user:{u}" for u in thread.user_ids]
    return patients, users


def message(
    thread: Any,
    event: Any,
    recorded: str,
    allowed: Callable[[str], bool],
    known: Container[str] = ALL,
) -> dict[str, Any] | None:
    """One message of a thread; None if no patient in the export takes part in it. A patient
    not ``known`` (no Patient resource in the export) is named by identifier."""
    patients, users = _thread_parts(thread, allowed)

    def named(subject: str) -> dict[str, Any]:
        kind, _, ident = subject.partition(":")
        return patient_named(ident, known) if kind == "patient" else user_ref(ident)

    if not patients:
        return None
    kind = thread.kind
    resource: dict[str, Any] = {"resourceType": "Communication", "id": str(event.message_id)}
    if len(patients) < len(thread.patient_ids):
        # Other patients of the thread are not named here: a part of the message, its own id.
        shown = [p.partition(":")[2] for p in patients]
        resource["id"] = subset_id("Communication", resource["id"], shown)
        subsetted(resource)
    resource["identifier"] = [{**uri_identifier(thread.id), "type": {"text": "thread"}}]
    if kind == "imported":
        return imported_message(resource, thread, event, named(patients[0]), known)
    resource |= {
        "status": "completed",
        "medium": [coded(MODE, *MEDIUM[kind]) if kind in MEDIUM else {"text": "SMS"}],
        "subject": named(patients[0]),
        "topic": {"text": thread.topic},
    }
    everyone = patients + users
    if kind == "secure":
        resource["sent"] = instant(event.at)
        resource["recipient"] = [named(s) for s in everyone if s != event.sender]
        if allowed(event.sender) or event.sender.startswith("user:"):
            resource["sender"] = named(event.sender)
        resource["payload"] = [{"contentString": event.body}]
    elif kind == "email":
        # sent: the Date field; received: the practice's mail server's Received stamp, else
        # the import (docs/EHI_EXPORT.md §5.10); each field's text rides as original-time.
        date = next((v for n, v in event.headers if n.lower() == "date"), None)
        sent, received = header_time(event.headers, "date"), received_header_time(event.headers)
        resource["extension"] = [
            *([original_time(date.strip())] if date is not None else []),
            {"url": RECORDED, "valueInstant": recorded},
        ]
        if sent is not None:
            resource["sent"] = sent.fhir
        resource["received"] = received.fhir if received is not None else instant(event.received_at)
        sender = next((v for n, v in event.headers if n.lower() == "from"), None)
        if sender is not None:
            resource["sender"] = {"display": sender.strip()}
        resource["recipient"] = [named(s) for s in everyone]
        resource["payload"] = [
            {"contentAttachment": {"contentType": "message/rfc822", "data": base64_of(event.raw)}}
        ]
    else:
        sent = None if event.sent_at is None else sms_time(event.sent_at)
        resource["extension"] = [
            *([original_time(event.sent_at)] if event.sent_at is not None else []),
            {"url": RECORDED, "valueInstant": recorded},
        ]
        if sent is not None:
            resource["sent"] = sent.fhir
        resource["received"] = recorded
        resource["sender"] = {"display": event.from_number}
        resource["recipient"] = [{"display": event.to_number}, *(named(s) for s in everyone)]
        metadata = dumps(_plain(event.provider_metadata)).encode("ascii")
        resource["payload"] = [
            {"contentString": event.body},
            {"contentAttachment": {"contentType": "application/json", "data": base64_of(metadata)}},
        ]
    return resource


def sms_time(text: str) -> OriginalTime | None:
    """An SMS's sent time: epoch milliseconds (an export's ``date``), else HL7 TS or ISO 8601
    (typed into the API); None when it is none of these."""
    try:
        return parse_epoch_millis(text)
    except ValueError:
        return read_time(text)


def _plain(value: Any) -> Any:
    """Provider metadata as JSON values: decimals as numbers with their digits."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        text = str(value)
        return Number(text) if JSON_NUMBER.fullmatch(text) else text
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, UUID | date):
        return str(value)
    return value


def amendment_letters(record: Tracked) -> Iterator[dict[str, Any]]:
    """The request as the patient sent it, then each answer in the order it was filed."""
    request = record.state
    patient = patient_ref(request.patient_id)
    yield {
        "resourceType": "Communication",
        "id": record.id,
        "meta": record.meta,
        "status": "completed",
        "category": [{"text": "amendment-request"}],
        "subject": patient,
        "about": [target_ref(request.target_type, request.target_id)],
        "received": instant(request.received_at),
        "sender": patient,
        # The requested change, then the patient's reason, each as written.
        "payload": [{"contentString": request.requested_change}, {"contentString": request.reason}],
    }
    previous = record.id
    for header, event in record.events:
        name = header.type.rpartition(".")[2]
        letter: dict[str, Any] = {
            "resourceType": "Communication",
            "id": letter_id(record.id, name),
            "status": "completed",
            "subject": patient,
            "inResponseTo": [{"reference": f"Communication/{previous}"}],
            "about": [target_ref(request.target_type, request.target_id)],
        }
        if name == "Accepted":
            letter["category"] = [{"text": "amendment-acceptance"}]
            letter["sent"] = instant(event.decided_at)
            letter["sender"] = user_ref(event.decided_by)
            letter["recipient"] = [patient]
            if event.note is not None:
                letter["payload"] = [{"contentString": event.note}]
        elif name == "Denied":
            letter["category"] = [{"text": "amendment-denial"}]
            letter["reasonCode"] = [{"coding": [{"system": DENIAL_BASIS, "code": event.basis}]}]
            letter["sent"] = instant(event.decided_at)
            letter["sender"] = user_ref(event.decided_by)
            letter["recipient"] = [patient]
            letter["payload"] = [{"contentString": event.denial_text}]
        elif name == "DisagreementFiled":
            letter["category"] = [{"text": "amendment-disagreement"}]
            letter["received"] = instant(event.filed_at)
            letter["sender"] = patient
            letter["payload"] = [{"contentString": event.statement}]
        elif name == "RebuttalFiled":
            letter["category"] = [{"text": "amendment-rebuttal"}]
            letter["sent"] = instant(event.filed_at)
            letter["sender"] = user_ref(event.author_id)
            letter["recipient"] = [patient]
            letter["payload"] = [{"contentString": event.text}]
        else:
            continue
        previous = letter["id"]
        yield letter
