"""Domain aggregates saved through the real ledger, on SQLite and on PostgreSQL.

Values come back exactly as received ("5.2" and "mg/dL" as text, raw bytes as bytes), and every
stored event's header names the patients and users its aggregate concerns.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain import appointments as schedule
from domain.access import Access
from domain.amendments import AmendmentRequest
from domain.base import patient_subject, user_subject
from domain.documents import Document
from domain.errors import DoubleBooking
from domain.labs import LabResult
from domain.notes import Note
from domain.patients import Patient
from domain.quantities import Quantity
from domain.users import User
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from tests.conftest import pg_connect
from verify.records import Header, parse_header, split_record

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
QUIET = {"every_events": 10**9, "every_seconds": 10**9}  # no automatic checkpoints
HL7 = b"MSH|^~\\&|LAB|ACME\rOBX|1|NM|2160-0^Creatinine^LN||5.2|mg/dL|0.6-1.2|H\r"


def headers(config: StoreConfig, stream: UUID) -> list[Header]:
    """The headers of a stream's stored rows, read with plain SQL and the verifier's parser."""
    if config.database_url is None:
        conn: Any = sqlite3.connect(config.sqlite_path)
        sql, key = (
            "SELECT state FROM stored_events WHERE originator_id = ? ORDER BY position",
            stream.hex,
        )
    else:
        conn = pg_connect(config.database_url)
        conn.execute(f'SET search_path TO "{parse_database_url(config.database_url).schema}"')
        sql, key = (
            "SELECT state FROM stored_events WHERE originator_id = %s ORDER BY position",
            stream,
        )
    try:
        rows = conn.execute(sql, (key,)).fetchall()
    finally:
        conn.close()
    return [parse_header(split_record(bytes(row[0]))[0]) for row in rows]


def test_a_lab_value_and_unit_come_back_exactly_and_its_headers_name_the_patient(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    patient = Patient.register(
        mrn="MRN-1", given_name="A", family_name="B", birth_date=AT.date(), sex="unknown"
    )
    result = LabResult.receive(
        patient_id=patient.id,
        loinc_code="2160-0",
        test_name="Creatinine",
        quantity=Quantity("5.2", "mg/dL"),
        reference_range="0.6-1.2",
        reference_low="0.6",
        reference_high="1.2",
        abnormal_flag="H",
        performing_lab="ACME",
        collected_at="20260105083000-0500",
        source_message=HL7,
        source_format="HL7v2",
    )
    result.record_conversion("umol/L")
    ledger.save(patient, result)

    again = ledger.repository.get(result.id)
    assert (again.value, again.unit) == ("5.2", "mg/dL")
    assert type(again.value) is str and again.source_message == HL7
    assert again.conversions[0]["converted_value"] == "459.68"
    assert again.conversions[0]["from_value"] == "5.2"

    found = headers(store_config, result.id)
    assert [h.type for h in found] == [
        "domain.labs:LabResult.Received",
        "domain.labs:LabResult.ConversionRecorded",
    ]
    assert {h.subjects for h in found} == {(patient_subject(patient.id),)}
    assert [h.subjects for h in headers(store_config, patient.id)] == [
        (patient_subject(patient.id),)
    ]


def test_a_signed_note_and_its_addendum_replay_from_the_ledger(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    patient_id, author = uuid4(), uuid4()
    note = Note.draft(patient_id=patient_id, author_id=author, kind="progress", text="original")
    note.sign(signed_by=author, at=AT)
    request = AmendmentRequest.request(
        patient_id=patient_id,
        target_type="note",
        target_id=note.id,
        requested_change="x",
        reason="y",
        received_at=AT,
    )
    addendum = note.add_addendum(
        text="added", reason="amendment", author_id=author, at=AT, amendment_request_id=request.id
    )
    request.accept(decided_by=author, at=AT, amendment_id=addendum)
    ledger.save(note, request)
    again = ledger.repository.get(note.id)
    assert again.text == "original" and again.signed_at == AT
    assert again.addenda[0]["amendment_request_id"] == request.id
    assert ledger.repository.get(request.id).amendment_id == addendum
    assert {h.subjects for h in headers(store_config, note.id)} == {(patient_subject(patient_id),)}


def test_users_documents_and_reads_carry_their_subjects(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    user = User.register(name="Dr. C", role="clinician")
    patient_id = uuid4()
    content = b"\x89PNG\r\n\x1a\n\x00"
    document = Document.store(
        content=content,
        sha256=hashlib.sha256(content).hexdigest(),
        original_filename="scan.png",
        media_type="image/png",
        uploader_id=user.id,
        patient_id=patient_id,
    )
    read = Access.record(
        user_id=user.id,
        patient_id=patient_id,
        action="print",
        data_category="documents",
        purpose_of_use="TREAT",
        at=AT,
    )
    ledger.save(user, document, read)
    assert ledger.repository.get(document.id).content == content
    assert [h.subjects for h in headers(store_config, user.id)] == [(user_subject(user.id),)]
    assert [h.subjects for h in headers(store_config, document.id)] == [
        (patient_subject(patient_id),)
    ]
    assert [h.subjects for h in headers(store_config, read.id)] == [
        (patient_subject(patient_id), user_subject(user.id))
    ]


def test_double_booking_is_refused_through_the_ledger_even_when_racing(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    provider = uuid4()
    start, end = AT, AT + timedelta(minutes=30)

    def attempt() -> list[Any]:
        days = schedule.provider_days(ledger.repository.get, provider, (start, end))
        return schedule.book(
            days.values(),
            patient_id=uuid4(),
            provider_id=provider,
            start=start,
            end=end,
            reason="x",
        )

    first, racing = attempt(), attempt()  # both read the schedule before either saves
    ledger.save(*first)
    with pytest.raises(IntegrityError):
        ledger.save(*racing)
    with pytest.raises(DoubleBooking):
        attempt()
    appointment = first[0]
    assert {h.subjects for h in headers(store_config, appointment.id)} == {
        (patient_subject(appointment.patient_id), user_subject(provider))
    }
    day_id = schedule.provider_day_id(provider, start.date())
    assert [h.subjects for h in headers(store_config, day_id)] == [(user_subject(provider),)] * 2
