"""Message threads: secure messages typed in Chartledger, and ingested email and SMS.

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

KINDS = ("secure", "email", "sms")


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

    def _check_kind(self, kind: str) -> None:
        if self.kind != kind:
            raise ThreadStateError(f"thread {self.id} is a {self.kind} thread, not {kind}")
