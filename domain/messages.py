"""Message threads: secure messages typed in Chartledger, ingested email and SMS, and the
Communications of another system's records (or of another Chartledger) imported as sent.

Ingested messages are evidence (DESIGN.md, rule 5): an email is kept as the exact bytes received,
next to its RFC 5322 header fields in order as they appear; an SMS keeps its numbers, its sent
time as text and the provider's metadata as received.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import (
    choice,
    identifier,
    moment,
    optional_text,
    payload,
    raw_bytes,
    text,
)
from domain.errors import InvalidEntry, ThreadStateError

payload_value = payload  # ``payload`` is also a parameter name below

KINDS = ("secure", "email", "sms", "imported")
# What names a party of an imported Communication, as the source named it: its reference text,
# its identifier (system and value), the resource type it is of, its display; and, when the
# reference names a patient of the import, that patient's id here.
PARTY_KEYS = ("reference", "system", "value", "type", "display", "patient")


def email_headers(raw: bytes) -> list[list[str]]:
    """The header fields of an RFC 5322 message, in order, as ``[name, value]``.

    The value is everything after the colon up to the end of the field, folding (CRLF plus
    whitespace) kept as it appears, so nothing is unfolded, decoded (RFC 2047) or trimmed. Bytes
    that are not UTF-8 show as U+FFFD here; the raw message stays the authority.
    """
    fields: list[list[bytes]] = []
    for number, line in enumerate(raw.splitlines(keepends=True), start=1):
        if line in (b"\r\n", b"\n"):
            break
        if line[:1] in (b" ", b"\t"):
            if not fields:
                raise InvalidEntry("raw email starts with a continuation line")
            fields[-1][1] += line
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or any(not 33 <= c <= 126 for c in name):
            raise InvalidEntry(f"raw email line {number} is not a header field (RFC 5322 §2.2)")
        fields.append([name, value])
    if not fields:
        raise InvalidEntry("raw email has no header fields")
    return [
        [name.decode("ascii"), _strip_line_end(value).decode("utf-8", errors="replace")]
        for name, value in fields
    ]


def _strip_line_end(value: bytes) -> bytes:
    if value.endswith(b"\r\n"):
        return value[:-2]
    if value.endswith(b"\n"):
        return value[:-1]
    return value


class Thread(Record):
    @classmethod
    def start(
        cls,
        *,
        kind: str,
        topic: str,
        patient_ids: Sequence[UUID] = (),
        user_ids: Sequence[UUID] = (),
    ) -> Thread:
        patients = [identifier(p, "patient_ids") for p in patient_ids]
        users = [identifier(u, "user_ids") for u in user_ids]
        if len(set(patients)) != len(patients) or len(set(users)) != len(users):
            raise InvalidEntry("a participant is listed twice")
        kind = choice(kind, "kind", KINDS)
        if kind == "secure" and (not users or len(patients) + len(users) < 2):
            raise InvalidEntry("a secure thread needs a user and at least one other participant")
        if not patients and not users:
            raise InvalidEntry("a thread needs at least one participant")
        return cls(kind=kind, topic=text(topic, "topic"), patient_ids=patients, user_ids=users)

    @event("Started")
    def __init__(
        self, kind: str, topic: str, patient_ids: list[UUID], user_ids: list[UUID]
    ) -> None:
        self.kind = kind
        self.topic = topic
        self.patient_ids = list(patient_ids)
        self.user_ids = list(user_ids)
        self.messages: list[dict[str, Any]] = []

    def ledger_subjects(self) -> Iterable[str]:
        return self.participants

    @property
    def participants(self) -> tuple[str, ...]:
        return (
            *(patient_subject(p) for p in self.patient_ids),
            *(user_subject(u) for u in self.user_ids),
        )

    def post(self, *, sender: str, body: str, at: datetime) -> UUID:
        """A secure message from ``sender`` (``patient:<id>`` or ``user:<id>`` in the thread)."""
        self._check_kind("secure")
        if sender not in self.participants:
            raise ThreadStateError(f"sender is not a participant of thread {self.id}")
        message_id = uuid4()
        self._post(
            message_id=message_id, sender=sender, body=text(body, "body"), at=moment(at, "at")
        )
        return message_id

    @event("MessagePosted")
    def _post(self, message_id: UUID, sender: str, body: str, at: datetime) -> None:
        self.messages.append({"message_id": message_id, "kind": "secure", "sender": sender})

    def ingest_email(self, *, raw: bytes, received_at: datetime) -> UUID:
        """An email exactly as received; its header fields are parsed, never rewritten."""
        self._check_kind("email")
        headers = email_headers(raw_bytes(raw, "raw"))
        message_id = uuid4()
        self._ingest_email(
            message_id=message_id,
            raw=raw,
            headers=headers,
            received_at=moment(received_at, "received_at"),
        )
        return message_id

    @event("EmailIngested")
    def _ingest_email(
        self, message_id: UUID, raw: bytes, headers: list[list[str]], received_at: datetime
    ) -> None:
        self.messages.append({"message_id": message_id, "kind": "email", "raw": raw})

    def ingest_sms(
        self,
        *,
        from_number: str,
        to_number: str,
        body: str,
        sent_at: str | None,
        provider_metadata: dict[str, Any],
    ) -> UUID:
        """An SMS with its provider's metadata as received (parse JSON with parse_float=Decimal)."""
        self._check_kind("sms")
        if type(body) is not str:
            raise InvalidEntry("body must be text")
        if type(provider_metadata) is not dict:
            raise InvalidEntry("provider_metadata must be a map")
        message_id = uuid4()
        self._ingest_sms(
            message_id=message_id,
            from_number=text(from_number, "from_number"),
            to_number=text(to_number, "to_number"),
            body=body,
            sent_at=optional_text(sent_at, "sent_at"),
            provider_metadata=payload(provider_metadata, "provider_metadata"),
        )
        return message_id

    @event("SmsIngested")
    def _ingest_sms(
        self,
        message_id: UUID,
        from_number: str,
        to_number: str,
        body: str,
        sent_at: str | None,
        provider_metadata: dict[str, Any],
    ) -> None:
        self.messages.append({"message_id": message_id, "kind": "sms", "body": body})

    def import_communication(
        self,
        *,
        source: str,
        resource_id: str,
        status: str,
        topic: str | None,
        sent: str | None,
        received: str | None,
        sender: dict[str, str] | None,
        recipients: Sequence[dict[str, str]],
        payload: Sequence[dict[str, Any]],
        category: Sequence[dict[str, Any]] = (),
        medium: Sequence[dict[str, Any]] = (),
        reason: Sequence[dict[str, Any]] = (),
    ) -> UUID:
        """A Communication of another record, kept as its source wrote it (docs/IMPORTS.md
        §9.3): its parts (``{"text"}`` or ``{"media_type", "data", "title"}``) exactly, its
        sent and received times as text, its sender and recipients as the source named them
        (no practice user is made of a source's practitioner), its source system and id."""
        self._check_kind("imported")
        parts = [_part(p, f"payload[{n}]") for n, p in enumerate(payload)]
        message_id = uuid4()
        self._import_communication(
            message_id=message_id,
            source=text(source, "source"),
            resource_id=text(resource_id, "resource_id"),
            status=text(status, "status"),
            topic=optional_text(topic, "topic"),
            sent=optional_text(sent, "sent"),
            received=optional_text(received, "received"),
            sender=None if sender is None else _party(sender, "sender"),
            recipients=[_party(r, f"recipients[{n}]") for n, r in enumerate(recipients)],
            parts=parts,
            category=[payload_value(c, "category") for c in category],
            medium=[payload_value(m, "medium") for m in medium],
            reason=[payload_value(r, "reason") for r in reason],
        )
        return message_id

    @event("CommunicationImported")
    def _import_communication(
        self,
        message_id: UUID,
        source: str,
        resource_id: str,
        status: str,
        topic: str | None,
        sent: str | None,
        received: str | None,
        sender: dict[str, str] | None,
        recipients: list[dict[str, str]],
        parts: list[dict[str, Any]],
        category: list[dict[str, Any]],
        medium: list[dict[str, Any]],
        reason: list[dict[str, Any]],
    ) -> None:
        self.messages.append({"message_id": message_id, "kind": "imported"})

    def _check_kind(self, kind: str) -> None:
        if self.kind != kind:
            raise ThreadStateError(f"thread {self.id} is a {self.kind} thread, not {kind}")


def _party(value: Any, field: str) -> dict[str, str]:
    if type(value) is not dict or not value:
        raise InvalidEntry(f"{field} must name the party (reference, identifier or display)")
    unknown = set(value) - set(PARTY_KEYS)
    if unknown:
        raise InvalidEntry(f"{field} has keys other than {', '.join(PARTY_KEYS)}")
    return {k: text(v, f"{field}.{k}") for k, v in value.items()}


def _part(value: Any, field: str) -> dict[str, Any]:
    """One part of an imported message: its text exactly (blank text too), or an attachment's
    bytes with their media type and title when the source gave them."""
    if type(value) is not dict:
        raise InvalidEntry(f"{field} must be a map")
    if set(value) == {"text"}:
        if type(value["text"]) is not str:
            raise InvalidEntry(f"{field}.text must be text")
        return {"text": value["text"]}
    if "data" not in value or set(value) - {"data", "media_type", "title"}:
        raise InvalidEntry(f"{field} must be a text or an attachment (data, media_type, title)")
    part: dict[str, Any] = {"data": raw_bytes(value["data"], f"{field}.data")}
    for key in ("media_type", "title"):
        if value.get(key) is not None:
            part[key] = text(value[key], f"{field}.{key}")
    return part
