"""Message threads: secure messages typed here, and email and SMS ingested exactly as received
(email as its raw RFC 5322 bytes). Reading a thread records its access event first."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, status

from api.auth import load, now
from api.deps import LedgerDep
from api.roles import FrontDesk
from api.routing import Router
from api.schemas import (
    MessageOut,
    PostIn,
    Purpose,
    SmsIn,
    ThreadIn,
    ThreadOut,
    ThreadReadOut,
    jsonable,
)
from domain.base import user_subject
from domain.messages import Thread
from domain.patients import Patient
from events.ledger import Ledger
from projections.reads import Reader, record_access

router = Router(prefix="/threads", tags=["messages"])
RawEmail = Annotated[bytes, Body(media_type="message/rfc822")]
MESSAGE_EVENTS = {"MessagePosted": "secure", "EmailIngested": "email", "SmsIngested": "sms"}


def _out(t: Thread) -> ThreadOut:
    return ThreadOut(
        thread_id=t.id,
        kind=t.kind,
        topic=t.topic,
        patient_ids=list(t.patient_ids),
        user_ids=list(t.user_ids),
        messages=len(t.messages),
    )


def _save(ledger: Ledger, principal: Any, thread: Thread) -> ThreadOut:
    with principal.acting():
        ledger.save(thread)
    return _out(thread)


@router.post("", status_code=status.HTTP_201_CREATED)
def start(body: ThreadIn, principal: FrontDesk, ledger: LedgerDep) -> ThreadOut:
    for patient_id in body.patient_ids:
        load(ledger, patient_id, Patient)
    users = body.user_ids
    if body.kind == "secure" and principal.user_id not in users:
        users = [principal.user_id, *users]
    thread = Thread.start(
        kind=body.kind, topic=body.topic, patient_ids=body.patient_ids, user_ids=users
    )
    return _save(ledger, principal, thread)


@router.post("/{thread_id}/messages", status_code=status.HTTP_201_CREATED)
def post(thread_id: UUID, body: PostIn, principal: FrontDesk, ledger: LedgerDep) -> ThreadOut:
    thread = load(ledger, thread_id, Thread)
    thread.post(sender=user_subject(principal.user_id), body=body.body, at=now())
    return _save(ledger, principal, thread)


@router.post("/{thread_id}/email", status_code=status.HTTP_201_CREATED)
def ingest_email(
    thread_id: UUID, raw: RawEmail, principal: FrontDesk, ledger: LedgerDep
) -> ThreadOut:
    """The request body is the email exactly as received (``Content-Type: message/rfc822``)."""
    thread = load(ledger, thread_id, Thread)
    thread.ingest_email(raw=raw, received_at=now())
    return _save(ledger, principal, thread)


@router.post("/{thread_id}/sms", status_code=status.HTTP_201_CREATED)
def ingest_sms(thread_id: UUID, body: SmsIn, principal: FrontDesk, ledger: LedgerDep) -> ThreadOut:
    thread = load(ledger, thread_id, Thread)
    thread.ingest_sms(
        from_number=body.from_number,
        to_number=body.to_number,
        body=body.body,
        sent_at=body.sent_at,
        provider_metadata=body.provider_metadata,
    )
    return _save(ledger, principal, thread)


@router.get("/{thread_id}")
def read(
    thread_id: UUID, principal: FrontDesk, ledger: LedgerDep, purpose: Purpose = "TREAT"
) -> ThreadReadOut:
    """The thread and every message in it, as recorded."""
    thread = load(ledger, thread_id, Thread)
    outsider = user_subject(principal.user_id) not in thread.participants
    if "owner" not in principal.roles and outsider and not thread.patient_ids:
        load(ledger, UUID(int=0), Thread)  # a thread between others, with no patient: as absent
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    record_access(ledger, reader, "access", "messages", [*thread.patient_ids] or [None])
    entries = []
    for event in ledger.events.get(thread_id):
        name = type(event).__name__
        if name in MESSAGE_EVENTS:
            fields = {
                k: v
                for k, v in vars(event).items()
                if k not in ("originator_id", "originator_version", "timestamp", "subjects")
            }
            entries.append(
                MessageOut(
                    message_id=fields.pop("message_id"),
                    kind=MESSAGE_EVENTS[name],
                    fields=jsonable(fields),
                )
            )
    return ThreadReadOut(**_out(thread).model_dump(), entries=entries)
