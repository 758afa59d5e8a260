"""Message threads: secure messages typed here, and email and SMS ingested exactly as received
(email as its raw RFC 5322 bytes). Reading a thread records its access event first.

A thread says things about the patients it concerns, so reading it, posting to it and ingesting
into it need the chart of every one of them (``api.care.thread_access``: an owner, a care
relationship someone else gave, or break-glass; staff open no charts). Starting a thread about
a patient, or taking part in one, gives no care relationship: the chart stays closed.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Body, status

from api.auth import Principal, load, now
from api.care import ChartAccess, thread_access
from api.deps import LedgerDep, RunnerDep
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
from projections.fhir.common import instant
from projections.original_times import message_times
from projections.reads import Reader, record_access

router = Router(prefix="/threads", tags=["messages"])
RawEmail = Annotated[bytes, Body(media_type="message/rfc822")]
MESSAGE_EVENTS = {
    "MessagePosted": "secure",
    "EmailIngested": "email",
    "SmsIngested": "sms",
    "CommunicationImported": "imported",
}


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


def _add(ledger: Ledger, runner: Any, principal: Principal, thread_id: UUID, add: Any) -> ThreadOut:
    """Add to the thread as the principal's access to its patients (flagged under break-glass)."""
    thread = load(ledger, thread_id, Thread)
    accesses = thread_access(ledger, runner, principal, thread.patient_ids, thread.id, "change")
    add(thread)
    emergency = [a for a in accesses if a.emergency_access_id is not None]
    return _save(ledger, emergency[0] if emergency else principal, thread)


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
def post(
    thread_id: UUID, body: PostIn, principal: FrontDesk, ledger: LedgerDep, runner: RunnerDep
) -> ThreadOut:
    sender = user_subject(principal.user_id)
    return _add(
        ledger,
        runner,
        principal,
        thread_id,
        lambda t: t.post(sender=sender, body=body.body, at=now()),
    )


@router.post("/{thread_id}/email", status_code=status.HTTP_201_CREATED)
def ingest_email(
    thread_id: UUID, raw: RawEmail, principal: FrontDesk, ledger: LedgerDep, runner: RunnerDep
) -> ThreadOut:
    """The request body is the email exactly as received (``Content-Type: message/rfc822``)."""
    return _add(
        ledger, runner, principal, thread_id, lambda t: t.ingest_email(raw=raw, received_at=now())
    )


@router.post("/{thread_id}/sms", status_code=status.HTTP_201_CREATED)
def ingest_sms(
    thread_id: UUID, body: SmsIn, principal: FrontDesk, ledger: LedgerDep, runner: RunnerDep
) -> ThreadOut:
    return _add(
        ledger,
        runner,
        principal,
        thread_id,
        lambda t: t.ingest_sms(
            from_number=body.from_number,
            to_number=body.to_number,
            body=body.body,
            sent_at=body.sent_at,
            provider_metadata=body.provider_metadata,
        ),
    )


@router.get("/{thread_id}")
def read(
    thread_id: UUID,
    principal: FrontDesk,
    ledger: LedgerDep,
    runner: RunnerDep,
    purpose: Purpose = "TREAT",
) -> ThreadReadOut:
    """The thread and every message in it, as recorded."""
    thread = load(ledger, thread_id, Thread)
    outsider = user_subject(principal.user_id) not in thread.participants
    if "owner" not in principal.roles and outsider and not thread.patient_ids:
        load(ledger, UUID(int=0), Thread)  # a thread between others, with no patient: as absent
    accesses = thread_access(ledger, runner, principal, thread.patient_ids, thread.id, "access")
    _record_read(ledger, principal, accesses, purpose)
    entries = []
    for event in ledger.events.get(thread_id):
        name = type(event).__name__
        if name in MESSAGE_EVENTS:
            fields = {
                k: v
                for k, v in vars(event).items()
                if k not in ("originator_id", "originator_version", "timestamp", "subjects")
            }
            kind = MESSAGE_EVENTS[name]
            entries.append(
                MessageOut(
                    message_id=fields.pop("message_id"),
                    kind=kind,
                    fields=jsonable(fields),
                    recorded_at=instant(event.timestamp),
                    original_times=message_times(kind, fields),
                )
            )
    return ThreadReadOut(**_out(thread).model_dump(), entries=entries)


def _record_read(
    ledger: Ledger, principal: Principal, accesses: list[ChartAccess], purpose: str
) -> None:
    """One access event per patient, each as that chart was reached (ETREAT under break-glass)."""
    if not accesses:
        reader = Reader(principal.user_id, purpose, str(principal.session_id))
        record_access(ledger, reader, "access", "messages", [None])
    for access in accesses:
        record_access(ledger, access.reader(purpose), "access", "messages", [access.patient_id])
