"""The clinical record through the ledger and its views, on SQLite and on PostgreSQL: what the
issue asks the chart, schedule, audit and access views to show."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain import appointments as scheduling
from domain.access import Disclosure
from domain.amendments import DENIAL_BASES, AmendmentRequest
from domain.care_team import CareAssignment
from domain.credentials import Account
from domain.errors import DoubleBooking, NoteAlreadySigned
from domain.labs import LabResult
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from domain.quantities import Quantity
from domain.users import User
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections import state_codec
from projections.access_report import patient_access_report
from projections.audit import audit_report
from projections.chart import chart
from projections.reads import (
    PatientNotFound,
    Reader,
    copy_chart,
    export_chart,
    open_chart,
    open_chart_as_of,
    print_chart,
    read_disclosures,
    search_patients,
)
from projections.rebuild import all_projections, runner_for
from projections.runner import Runner
from projections.schedule import conflicts, provider_day
from verify.canonical import decode

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HL7 = b"MSH|^~\\&|LAB|ACME\rOBX|1|NM|2345-7^Glucose^LN||5.2|mg/dL|3.9-5.5\r"


@pytest.fixture
def runner(ledger: Ledger) -> Runner:
    return runner_for(ledger)


def register(ledger: Ledger, mrn: str = "MRN-7") -> Patient:
    patient = Patient.register(
        mrn=mrn, given_name="Ada", family_name="Quill", birth_date=AT.date(), sex="female"
    )
    ledger.save(patient)
    return patient


def entry_of(entries: list[Any], entry_id: UUID) -> dict[str, Any]:
    (found,) = [e for e in entries if e.entry_id == entry_id]
    return found.state


def clinician() -> Reader:
    return Reader(user_id=uuid4(), purpose_of_use="TREAT", session="session-1")


def test_a_chart_row_written_by_one_runner_is_read_and_rewritten_by_the_next(
    ledger: Ledger, runner: Runner
) -> None:
    """A row's state is deflated against its own entry id, patient and first time: another
    runner (a restarted server: nothing kept) reads it back from the row, folds the next event
    into it and writes it again, and the chart reads the result."""
    patient = register(ledger)
    result = LabResult.receive(
        patient_id=patient.id, loinc_code="2345-7", test_name="Glucose",
        quantity=Quantity("5.2", "mg/dL"), performing_lab="Lab", source_format="HL7v2",
        source_message=b"MSH|", collected_at="20261120",
    )  # fmt: skip
    ledger.save(result)
    runner.catch_up()
    result.correct(quantity=Quantity("5.3", "mg/dL"), reason="typo", corrects_version=1)
    ledger.save(result)
    runner_for(ledger).catch_up()
    shown = entry_of(chart(ledger.db, patient.id), result.id)
    assert (shown["value"], shown["value_version"], shown["patient_id"]) == ("5.3", 2, patient.id)
    with ledger.db.read() as c:
        c.execute("SELECT state FROM chart_entries WHERE entry_id = ?", (str(result.id),))
        ((state,),) = c.fetchall()
    assert bytes(state).startswith(state_codec.DEFLATED_WITH_ROW)


def test_a_signed_note_is_amended_not_edited_and_as_of_shows_the_original(
    ledger: Ledger, runner: Runner
) -> None:
    patient, author = register(ledger), uuid4()
    note = Note.draft(patient_id=patient.id, author_id=author, kind="progress", text="BP fine")
    note.sign(signed_by=author, at=AT)
    ledger.save(note)
    with pytest.raises(NoteAlreadySigned):
        note.edit("BP high")
    time.sleep(0.002)  # the moment between the signing and the addendum
    before_addendum = datetime.now(UTC)
    time.sleep(0.002)
    note.add_addendum(text="BP recheck 150/95", reason="late entry", author_id=author, at=AT)
    ledger.save(note)

    reader = clinician()
    now = entry_of(open_chart(ledger, runner, reader, patient.id), note.id)
    assert now["text"] == "BP fine" and now["addenda"][0]["text"] == "BP recheck 150/95"
    then = entry_of(open_chart_as_of(ledger, reader, patient.id, before_addendum), note.id)
    assert then["text"] == "BP fine" and then["addenda"] == []
    assert then["signed_at"] == AT


def test_a_lab_value_stays_exactly_5_2_mg_dl_and_its_conversion_is_explicit(
    ledger: Ledger, runner: Runner, store_config: StoreConfig
) -> None:
    patient = register(ledger)
    result = LabResult.receive(
        patient_id=patient.id,
        loinc_code="2345-7",
        test_name="Glucose",
        quantity=Quantity("5.2", "mg/dL"),
        reference_range="3.9-5.5",
        performing_lab="ACME",
        source_message=HL7,
        source_format="HL7v2",
    )
    ledger.save(result)
    runner.catch_up()
    stored = entry_of(chart(ledger.db, patient.id), result.id)
    assert (stored["value"], stored["unit"]) == ("5.2", "mg/dL")
    assert type(stored["value"]) is str and stored["source_message"] == HL7

    result.record_conversion("mmol/L")
    ledger.save(result)
    shown = entry_of(open_chart(ledger, runner, clinician(), patient.id), result.id)
    (conversion,) = shown["conversions"]
    assert (shown["value"], shown["unit"]) == ("5.2", "mg/dL")  # the original is never replaced
    assert (conversion["from_value"], conversion["from_unit"]) == ("5.2", "mg/dL")
    assert (conversion["converted_value"], conversion["to_unit"]) == ("0.28860", "mmol/L")
    assert conversion["factor"] == "0.0555"
    # No float anywhere on the path: the view's bytes pass the canonical decoder, which has no
    # floats, and the stored payload decodes the same way.
    with ledger.db.read() as c:
        c.execute(
            "SELECT state, patient_id, first_recorded FROM chart_entries WHERE entry_id = ?",
            (str(result.id),),
        )
        ((state, patient_id, first),) = c.fetchall()
    row = (str(result.id), patient_id, first)
    assert "5.2" in str(decode(state_codec.unpack(bytes(state), row)))


def test_a_denied_amendment_keeps_request_denial_disagreement_and_rebuttal_linked(
    ledger: Ledger, runner: Runner
) -> None:
    patient, officer = register(ledger), uuid4()
    note = Note.draft(patient_id=patient.id, author_id=officer, kind="progress", text="x")
    note.sign(signed_by=officer, at=AT)
    request = AmendmentRequest.request(
        patient_id=patient.id,
        target_type="note",
        target_id=note.id,
        requested_change="remove the diagnosis",
        reason="it is wrong",
        received_at=AT,
    )
    ledger.save(note, request)
    request.deny(
        decided_by=officer, at=AT, basis=DENIAL_BASES[-1], denial_text="accurate and complete"
    )
    ledger.save(request)
    request.file_disagreement(statement="I disagree", at=AT + timedelta(days=1))
    ledger.save(request)
    request.file_rebuttal(author_id=officer, text="we stand by it", at=AT + timedelta(days=2))
    ledger.save(request)
    shown = entry_of(open_chart(ledger, runner, clinician(), patient.id), request.id)
    assert shown["target_id"] == note.id and shown["status"] == "denied"
    assert shown["denial_text"] == "accurate and complete"
    assert (shown["disagreement"], shown["rebuttal"]) == ("I disagree", "we stand by it")


def test_double_booking_is_refused_and_the_schedule_shows_each_provider_day(
    ledger: Ledger, runner: Runner
) -> None:
    patient, other, provider = register(ledger), register(ledger, "MRN-8"), uuid4()
    start = AT + timedelta(days=1)
    slot = (start, start + timedelta(hours=1))
    days = scheduling.provider_days(ledger.repository.get, provider, slot)
    booked = scheduling.book(
        days.values(),
        patient_id=patient.id,
        provider_id=provider,
        start=start,
        end=start + timedelta(minutes=30),
        reason="follow-up",
    )
    ledger.save(*booked)
    days = scheduling.provider_days(ledger.repository.get, provider, slot)
    with pytest.raises(DoubleBooking):
        scheduling.book(
            days.values(),
            patient_id=other.id,
            provider_id=provider,
            start=start + timedelta(minutes=15),
            end=start + timedelta(minutes=45),
            reason="overlaps",
        )
    runner.catch_up()
    (row,) = provider_day(ledger.db, str(provider), start.date())
    assert (row["patient_id"], row["status"]) == (str(patient.id), "booked")
    assert row["starts"] == "2026-11-03T09:00:00.000000Z"
    assert conflicts(ledger.db) == []
    appointment = booked[0]
    appointment.check_in(at=start)
    ledger.save(appointment)
    runner.catch_up()
    assert provider_day(ledger.db, str(provider), start.date())[0]["status"] == "checked_in"


def test_every_read_of_phi_shows_in_the_audit_view_and_the_access_report(
    ledger: Ledger, runner: Runner
) -> None:
    patient, reader = register(ledger), clinician()
    reads = [
        (open_chart, "access"),
        (print_chart, "print"),
        (copy_chart, "copy"),
        (export_chart, "export"),
    ]
    for read, _ in reads:
        read(ledger, runner, reader, patient.id)
    assert [p.entry_id for p in search_patients(ledger, runner, reader, "quill")] == [patient.id]
    open_chart_as_of(ledger, reader, patient.id, datetime.now(UTC))
    runner.catch_up()
    report = patient_access_report(ledger.db, str(patient.id))
    assert [r["action"] for r in report] == ["access", "print", "copy", "export", "query", "access"]
    assert {r["user_id"] for r in report} == {str(reader.user_id)}
    assert {r["purpose"] for r in report} == {"TREAT"}
    audited = audit_report(ledger.db, patient_id=str(patient.id), user_id=str(reader.user_id))
    assert [r["action"] for r in audited] == [r["action"] for r in report]
    assert {r["source"] for r in audited} == {"session-1"}


def test_a_failed_read_is_recorded_as_a_failure(ledger: Ledger, runner: Runner) -> None:
    nobody, reader = uuid4(), clinician()
    with pytest.raises(PatientNotFound):
        open_chart(ledger, runner, reader, nobody)
    runner.catch_up()
    (row,) = patient_access_report(ledger.db, str(nobody))
    assert (row["action"], row["outcome"]) == ("access", "failure")


def test_the_accounting_of_disclosures_lists_what_164_528_asks(
    ledger: Ledger, runner: Runner
) -> None:
    patient = register(ledger)
    ledger.save(
        Disclosure.record(
            patient_id=patient.id,
            disclosed_at=AT,
            recipient_name="County Health Dept.",
            recipient_address="1 Main St",
            description="immunization record",
            purpose="public health reporting",
        )
    )
    (row,) = read_disclosures(ledger, runner, clinician(), patient.id)
    assert row["disclosed_at"] == "2026-11-02T09:00:00.000000Z"
    assert (row["recipient_name"], row["recipient_address"]) == ("County Health Dept.", "1 Main St")
    assert (row["description"], row["purpose"]) == (
        "immunization record",
        "public health reporting",
    )


def test_an_event_of_two_patients_is_in_each_ones_audit_rows_and_one_patients_in_theirs(
    ledger: Ledger, runner: Runner
) -> None:
    """A row names its one patient itself; an event of several is found through
    audit_patients, under each of them, and under no one else."""
    first, second, alone = register(ledger), register(ledger, "MRN-8"), register(ledger, "MRN-9")
    thread = Thread.start(kind="email", topic="results", patient_ids=[first.id, second.id])
    ledger.save(thread)
    runner.catch_up()
    for patient, events in ((first, 2), (second, 2), (alone, 1)):
        rows = audit_report(ledger.db, patient_id=str(patient.id))
        assert len(rows) == events, rows
        assert (str(patient.id) in rows[-1]["patient_id"].split()) and rows[0]["action"] == "create"
    (both,) = [r for r in audit_report(ledger.db) if r["event_type"].endswith("Thread.Started")]
    assert set(both["patient_id"].split()) == {str(first.id), str(second.id)}
    assert audit_report(ledger.db, patient_id=str(uuid4())) == []
    # Its activity is its recording (it says no time of its own): stored once, read whole.
    assert both["activity_time"] == both["event_time"]
    with ledger.db.read() as c:
        c.execute("SELECT activity_time FROM audit_events WHERE position = ?", (both["position"],))
        assert [tuple(row) for row in c.fetchall()] == [(None,)]
    by_activity = audit_report(ledger.db, sort_by="activity_time", descending=True)
    assert by_activity[0]["activity_time"] >= by_activity[-1]["activity_time"]
    assert by_activity[0]["activity_time"] is not None


def test_every_rebuilt_view_equals_the_live_one_row_for_row(ledger: Ledger, runner: Runner) -> None:
    test_every_read_of_phi_shows_in_the_audit_view_and_the_access_report(ledger, runner)
    test_an_event_of_two_patients_is_in_each_ones_audit_rows_and_one_patients_in_theirs(
        ledger, runner
    )
    test_double_booking_is_refused_and_the_schedule_shows_each_provider_day(ledger, runner)
    test_the_accounting_of_disclosures_lists_what_164_528_asks(ledger, runner)
    a_record_made_by_a_user(ledger)
    runner.catch_up()
    live = snapshot(ledger)
    runner.rebuild()
    assert snapshot(ledger) == live
    assert all(live.values())


def a_record_made_by_a_user(ledger: Ledger) -> Patient:
    """A registration by a user, who puts a clinician in the patient's care (the scenarios
    above act as nobody): a care relationship someone else gave. And an owner, a user
    administrator, and a clinician whose enrollment code that administrator issued (the care
    view follows who may hold whose account)."""
    by = uuid4()
    with acting(f"user:{by}", "s-1"):
        patient = register(ledger, "MRN-CARE")
        ledger.save(CareAssignment.assign(patient_id=patient.id, user_id=uuid4(), by=by, at=AT))
    owner = User.register(name="Olive", role="owner")
    admin = User.register(name="Morgan", role="user_admin")
    made = User.register(name="Dr. New", role="clinician")
    account = Account.open(username=f"new-{made.id}", user_id=made.id, password_hash=None, at=AT)
    account.issue_enrollment_code(
        code_hash="a hash", by=admin.id, at=AT, expires_at=AT + timedelta(days=1)
    )
    with acting(f"user:{admin.id}", "s-2"):
        ledger.save(owner, admin, made, account)
    return patient


def snapshot(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    tables: dict[str, list[tuple[Any, ...]]] = {}
    with ledger.db.read() as c:
        for projection in all_projections():
            for name in projection.tables:
                c.execute(f"SELECT * FROM {name}")
                rows = [
                    tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                    for row in c.fetchall()
                ]
                tables[name] = sorted(rows, key=repr)
    return tables


def test_an_audit_view_from_before_the_care_view_drops_its_self_made_care_table(
    ledger: Ledger, runner: Runner
) -> None:
    """audit_care held a care relationship anyone could give themselves (writing to a record);
    a store built by an older Chartledger loses it when a server starts, and nothing reads it."""
    with acting(f"user:{uuid4()}", "s-1"):
        register(ledger, "MRN-A")
    runner.catch_up()
    with ledger.db.write(lock=False) as c:  # as a view built by an older Chartledger
        c.execute("CREATE TABLE audit_care (user_id TEXT NOT NULL, patient_id TEXT NOT NULL)")
    runner_for(ledger)  # what a server does when it starts
    with ledger.db.read() as c:
        c.execute("SELECT * FROM audit_events")
        assert c.fetchall()
        with pytest.raises(Exception, match="audit_care"):
            c.execute("SELECT * FROM audit_care")
