from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest

from domain.base import patient_subject, user_subject
from domain.errors import InvalidEntry, ThreadStateError
from domain.messages import Thread, email_headers
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects

RAW = (
    b"Received: from mx.example.org (mx.example.org [192.0.2.1])\r\n"
    b"\tby mail.clinic.example; Fri, 5 Jan 2024 09:30:00 -0500\r\n"
    b"From: =?utf-8?q?Jos=C3=A9?= <jose@example.org>\r\n"
    b"To: front-desk@clinic.example\r\n"
    b"Subject:  Refill  please \r\n"
    b"X-Odd: caf\xe9\r\n"
    b"\r\n"
    b"Body line one\r\n"
)


def test_ingested_email_is_kept_byte_exact_with_its_headers_in_order(memory: Memory) -> None:
    patient = uuid4()
    thread = Thread.start(kind="email", topic="refill", patient_ids=[patient])
    thread.ingest_email(raw=RAW, received_at=AT)
    assert_round_trips(memory, thread)
    (_, ingested) = memory.stored(thread.id)
    assert ingested.raw == RAW
    assert ingested.headers == [
        [
            "Received",
            " from mx.example.org (mx.example.org [192.0.2.1])\r\n"
            "\tby mail.clinic.example; Fri, 5 Jan 2024 09:30:00 -0500",
        ],
        ["From", " =?utf-8?q?Jos=C3=A9?= <jose@example.org>"],
        ["To", " front-desk@clinic.example"],
        ["Subject", "  Refill  please "],
        ["X-Odd", " caf\ufffd"],
    ]
    assert subjects(memory, thread) == {(patient_subject(patient),)}


def test_an_email_without_header_fields_is_refused() -> None:
    with pytest.raises(InvalidEntry, match="line 1 is not a header field"):
        email_headers(b"just text\r\n\r\n")
    with pytest.raises(InvalidEntry, match="starts with a continuation line"):
        email_headers(b" folded\r\n\r\n")


def test_an_sms_keeps_its_numbers_time_and_provider_metadata_as_received(memory: Memory) -> None:
    thread = Thread.start(kind="sms", topic="reminder", patient_ids=[uuid4()])
    metadata = {"MessageSid": "SM123", "NumSegments": "1", "Price": Decimal("-0.00750")}
    thread.ingest_sms(
        from_number="+15555550123",
        to_number="+15555550100",
        body="C U at 9",
        sent_at="Fri, 05 Jan 2024 14:30:00 +0000",
        provider_metadata=metadata,
    )
    assert_round_trips(memory, thread)
    (_, sms) = memory.stored(thread.id)
    assert sms.provider_metadata == metadata
    assert sms.sent_at == "Fri, 05 Jan 2024 14:30:00 +0000"


def test_a_float_in_sms_metadata_is_refused() -> None:
    thread = Thread.start(kind="sms", topic="reminder", patient_ids=[uuid4()])
    with pytest.raises(InvalidEntry, match=r"provider_metadata\.Price holds a float"):
        thread.ingest_sms(
            from_number="+1",
            to_number="+2",
            body="x",
            sent_at=None,
            provider_metadata={"Price": -0.0075},
        )


def test_a_secure_message_comes_from_a_participant(memory: Memory) -> None:
    patient, clinician = uuid4(), uuid4()
    thread = Thread.start(
        kind="secure", topic="results", patient_ids=[patient], user_ids=[clinician]
    )
    thread.post(sender=user_subject(clinician), body="Your results are normal.", at=AT)
    thread.post(sender=patient_subject(patient), body="Thanks", at=AT)
    with pytest.raises(ThreadStateError, match="sender is not a participant"):
        thread.post(sender=user_subject(uuid4()), body="x", at=AT)
    assert_round_trips(memory, thread)
    assert subjects(memory, thread) == {
        tuple(sorted([patient_subject(patient), user_subject(clinician)]))
    }


def test_a_thread_takes_only_its_own_kind_of_message() -> None:
    thread = Thread.start(kind="secure", topic="x", user_ids=[uuid4(), uuid4()])
    with pytest.raises(ThreadStateError, match="is a secure thread, not email"):
        thread.ingest_email(raw=RAW, received_at=AT)
    email = Thread.start(kind="email", topic="x", patient_ids=[uuid4()])
    with pytest.raises(ThreadStateError, match="is a email thread, not secure"):
        email.post(sender=email.participants[0], body="x", at=AT)


def test_a_secure_thread_needs_a_user_and_someone_else() -> None:
    with pytest.raises(InvalidEntry, match="needs a user"):
        Thread.start(kind="secure", topic="x", patient_ids=[uuid4()])
    with pytest.raises(InvalidEntry, match="listed twice"):
        same = uuid4()
        Thread.start(kind="secure", topic="x", user_ids=[same, same])
