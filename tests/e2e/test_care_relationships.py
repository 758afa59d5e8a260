"""Care relationships nobody grants themselves (issue 15, attacks 3, 4 and 5), over HTTP on both
stores, as the attacker plays them: a clinician who books themselves, starts a thread or posts
to a colleague's still meets ``403 break-glass-required``; a thread about a patient whose chart
is closed is closed too; a colleague's draft stays its author's. Each refusal is one event in
the audit view, and nothing else is written. The legitimate ways in still open the chart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from api import auth, schemas
from api.client import Client, Conflict, Forbidden, NotFound
from tests.e2e.conftest import Member, Practice, add_member, events_of_type, office_manager
from tests.e2e.test_clinical import ada

REFUSAL = "domain.access:Refusal.Refused"
EMAIL = b"From: ada@example.org\r\nSubject: my chart\r\n\r\nplease\r\n"
START = datetime(2031, 5, 6, 9, 0, tzinfo=UTC)


def a_patient(by: Client, mrn: str) -> UUID:
    return by.register_patient(ada().model_copy(update={"mrn": mrn})).patient_id


def appointment(patient_id: UUID, provider_id: UUID, hour: int) -> schemas.AppointmentIn:
    start = START + timedelta(hours=hour)
    return schemas.AppointmentIn(
        patient_id=patient_id,
        provider_id=provider_id,
        start=start,
        end=start + timedelta(minutes=30),
        reason="visit",
    )


def refused(attempt: Callable[[], Any], problem: str = "break-glass-required") -> None:
    with pytest.raises(Forbidden) as error:
        attempt()
    assert error.value.type.endswith(problem), error.value.problem
    assert "Quill" not in str(error.value.problem)


def one_refusal_written(practice: Practice, attempt: Callable[[], Any], problem: str) -> None:
    """The attempt is refused with ``problem`` and writes exactly one event: the refusal."""
    before, refusals = practice.leaves(), len(events_of_type(practice, REFUSAL))
    refused(attempt, problem)
    assert practice.leaves() == before + 1
    assert len(events_of_type(practice, REFUSAL)) == refusals + 1


def refusals_of(practice: Practice, user: Member) -> list[Any]:
    return [e for e in events_of_type(practice, REFUSAL) if e.user_id == user.user_id]


@pytest.fixture
def team(practice: Practice) -> dict[str, Any]:
    owner = practice.owner()
    return {
        "owner": owner,
        "staff": add_member(practice, owner, "sam", "Sam Staff", "staff"),
        "mallory": add_member(practice, owner, "mallory", "Dr. Mallory", "clinician"),
        "casey": add_member(practice, owner, "casey", "Dr. Casey", "clinician"),
    }


def test_a_clinician_cannot_give_themselves_a_care_relationship(
    practice: Practice, team: dict[str, Any]
) -> None:
    owner, staff_member = team["owner"], team["staff"]
    mallory, casey = team["mallory"], team["casey"]
    staff, attacker, colleague = staff_member.client(), mallory.client(), casey.client()
    patient = a_patient(staff, "MRN-A3")
    owner.assign_care(patient, casey.user_id)  # Casey's patient, legitimately
    theirs = colleague.start_thread(
        schemas.ThreadIn(
            kind="secure", topic="results", patient_ids=[patient], user_ids=[mallory.user_id]
        )
    )
    colleague.post_message(theirs.thread_id, "glucose normal")
    emailed = colleague.start_thread(
        schemas.ThreadIn(kind="email", topic="refill", patient_ids=[patient])
    )
    chart = lambda: attacker.chart(patient)  # noqa: E731
    one_refusal_written(practice, chart, "break-glass-required")

    # Books the patient with themselves: the appointment is made, the chart stays shut.
    booked = attacker.book(appointment(patient, mallory.user_id, 0))
    one_refusal_written(practice, chart, "break-glass-required")
    # Starts a thread about the patient: allowed, and the chart stays shut.
    attacker.start_thread(schemas.ThreadIn(kind="secure", topic="hello", patient_ids=[patient]))
    one_refusal_written(practice, chart, "break-glass-required")
    # Posts to a colleague's thread, or ingests into one: refused, the chart stays shut.
    post = lambda: attacker.post_message(theirs.thread_id, "me too")  # noqa: E731
    one_refusal_written(practice, post, "break-glass-required")
    ingest = lambda: attacker.ingest_email(emailed.thread_id, EMAIL)  # noqa: E731
    one_refusal_written(practice, ingest, "break-glass-required")
    one_refusal_written(practice, chart, "break-glass-required")
    # Cancels the self-booking: still shut.
    attacker.cancel_appointment(booked.appointment_id, "changed my mind")
    one_refusal_written(practice, chart, "break-glass-required")
    # Writes to the record: refused as well (writing was a relationship once).
    note = lambda: attacker.draft_note(patient, "progress", "seen")  # noqa: E731
    one_refusal_written(practice, note, "break-glass-required")
    # Registers the same patient again under another MRN: the new record is empty to them,
    # and the existing one stays shut.
    duplicate = a_patient(attacker, "MRN-A3-DUP")
    refused(lambda: attacker.chart(duplicate))
    one_refusal_written(practice, chart, "break-glass-required")

    # No read of the chart was recorded; every refusal is in the audit view under the user and
    # the patient, naming what was tried and why.
    rows = owner.audit(patient_id=patient, user_id=mallory.user_id)
    assert not [r for r in rows if r.outcome == "success" and r.action in ("access", "query")]
    failures = [r for r in rows if r.event_type == REFUSAL]
    assert [(r.action, r.data_category, r.outcome) for r in failures] == [
        ("access", "chart", "failure"),
        ("access", "chart", "failure"),
        ("access", "chart", "failure"),
        ("change", "messages", "failure"),
        ("change", "messages", "failure"),
        ("access", "chart", "failure"),
        ("access", "chart", "failure"),
        ("create", "notes", "failure"),
        ("access", "chart", "failure"),
    ]
    assert {r.source for r in failures} == {str(attacker.me().session_id)}
    events = [e for e in refusals_of(practice, mallory) if e.patient_id == patient]
    assert {e.reason for e in events} == {"break-glass-required"}
    assert [e.target_id for e in events if e.data_category == "messages"] == [
        theirs.thread_id,
        emailed.thread_id,
    ]


def test_someone_else_puts_a_clinician_in_care_and_can_take_them_out(
    practice: Practice, team: dict[str, Any]
) -> None:
    owner, mallory, casey = team["owner"], team["mallory"], team["casey"]
    staff, clinician = team["staff"].client(), mallory.client()
    booked, assigned, registered = (a_patient(staff, m) for m in ("MRN-B", "MRN-C", "MRN-D"))

    # Staff book the clinician: the chart opens (TREAT), until the appointment is cancelled.
    visit = staff.book(appointment(booked, mallory.user_id, 1))
    assert clinician.chart(booked).entries
    staff.cancel_appointment(visit.appointment_id, "patient called")
    refused(lambda: clinician.chart(booked))
    checked_in = staff.book(appointment(booked, mallory.user_id, 2))
    staff.check_in(checked_in.appointment_id)
    assert clinician.chart(booked).entries  # checked in: the patient was theirs that day

    # An owner assigns the clinician to the care team, and ends it.
    refused(lambda: clinician.chart(assigned))
    owner.assign_care(assigned, mallory.user_id)
    assert clinician.chart(assigned).entries
    with pytest.raises(Conflict):
        owner.assign_care(assigned, mallory.user_id)  # already on it
    owner.end_care(assigned, mallory.user_id)
    refused(lambda: clinician.chart(assigned))
    staff.assign_care(assigned, mallory.user_id)  # again, by staff this time
    assert clinician.chart(assigned).entries

    # Staff name the registered provider; changing it moves the chart to the new one.
    staff.set_registered_provider(registered, mallory.user_id)
    assert clinician.chart(registered).entries
    staff.set_registered_provider(registered, casey.user_id)
    refused(lambda: clinician.chart(registered))
    assert casey.client().chart(registered).entries
    staff.clear_registered_provider(registered)
    refused(lambda: casey.client().chart(registered))
    # None to clear, whether cleared before or never named (409); no such patient is a 404.
    for no_provider in (registered, a_patient(staff, "MRN-R")):
        with pytest.raises(Conflict):
            staff.clear_registered_provider(no_provider)
    with pytest.raises(NotFound):
        staff.clear_registered_provider(uuid4())

    reads = owner.audit(patient_id=booked, user_id=mallory.user_id, action="access")
    assert [r.purpose for r in reads if r.outcome == "success"] == ["TREAT", "TREAT"]

    # A clinician cannot use the care-team routes; one who is also staff cannot assign
    # themselves (refused and recorded), though they can assign a colleague.
    refused(lambda: clinician.assign_care(booked, mallory.user_id), "forbidden")
    owner.grant_role(casey.user_id, "staff")
    both = casey.client()
    fresh = a_patient(staff, "MRN-E")
    self_assign = lambda: both.assign_care(fresh, casey.user_id)  # noqa: E731
    one_refusal_written(practice, self_assign, "not-permitted")
    self_register = lambda: both.set_registered_provider(fresh, casey.user_id)  # noqa: E731
    one_refusal_written(practice, self_register, "not-permitted")
    self_book = both.book(appointment(fresh, casey.user_id, 3))
    refused(lambda: both.chart(fresh))
    both.cancel_appointment(self_book.appointment_id, "no")
    both.assign_care(fresh, mallory.user_id)
    assert clinician.chart(fresh).entries
    events = [e for e in refusals_of(practice, casey) if e.patient_id == fresh]
    assert [(e.action, e.reason) for e in events][:2] == [
        ("create", "self-assignment"),
        ("create", "self-assignment"),
    ]


def test_a_thread_is_closed_when_a_chart_it_concerns_is_closed(
    practice: Practice, team: dict[str, Any]
) -> None:
    owner, mallory, casey, staff_member = (
        team["owner"],
        team["mallory"],
        team["casey"],
        team["staff"],
    )
    staff, attacker, colleague = staff_member.client(), mallory.client(), casey.client()
    patient, other = a_patient(staff, "MRN-T1"), a_patient(staff, "MRN-T2")
    for p in (patient, other):
        owner.assign_care(p, casey.user_id)
    thread = colleague.start_thread(
        schemas.ThreadIn(kind="secure", topic="results", patient_ids=[patient])
    ).thread_id
    colleague.post_message(thread, "Your results are normal.")
    both = colleague.start_thread(
        schemas.ThreadIn(kind="secure", topic="family", patient_ids=[patient, other])
    ).thread_id
    assert colleague.thread(thread).entries

    one_refusal_written(practice, lambda: attacker.thread(thread), "break-glass-required")
    one_refusal_written(practice, lambda: staff.thread(thread), "forbidden")
    # In the care of one patient of a thread, but not of the other: still closed.
    owner.assign_care(patient, mallory.user_id)
    assert attacker.thread(thread).entries
    one_refusal_written(practice, lambda: attacker.thread(both), "break-glass-required")
    owner.end_care(patient, mallory.user_id)

    # Under break-glass the thread opens, and the read is ETREAT, flagged with the emergency.
    emergency = attacker.break_glass(patient, "collapsed in the waiting room", 15)
    read = attacker.thread(thread)
    assert read.entries[0].fields["body"] == "Your results are normal."
    rows = owner.audit(patient_id=patient, user_id=mallory.user_id, action="access")
    opened = [r for r in rows if r.outcome == "success"]
    assert [(r.data_category, r.purpose) for r in opened] == [
        ("messages", "TREAT"),  # while assigned
        ("messages", "ETREAT"),
    ]
    assert opened[-1].source.endswith(f"break-glass:{emergency.emergency_access_id}")

    failures = [e for e in refusals_of(practice, mallory) if e.data_category == "messages"]
    assert [(e.patient_id, e.target_id, e.action) for e in failures] == [
        (patient, thread, "access"),
        (other, both, "access"),
    ]
    (by_staff,) = refusals_of(practice, staff_member)
    assert (by_staff.patient_id, by_staff.target_id, by_staff.reason) == (
        patient,
        thread,
        "no-chart-role",
    )
    audited = owner.audit(patient_id=patient, user_id=staff_member.user_id)
    assert [(r.action, r.data_category, r.outcome) for r in audited if r.event_type == REFUSAL] == [
        ("access", "messages", "failure")
    ]


def test_only_a_drafts_author_edits_or_signs_it(practice: Practice, team: dict[str, Any]) -> None:
    owner, mallory, casey = team["owner"], team["mallory"], team["casey"]
    author, colleague = casey.client(), mallory.client()
    patient = a_patient(team["staff"].client(), "MRN-N")
    for clinician in (casey, mallory):
        owner.assign_care(patient, clinician.user_id)  # both may open the chart
    draft = author.draft_note(patient, "progress", "BP 120/80")

    edit = lambda: colleague.edit_note(draft.note_id, "BP 180/110")  # noqa: E731
    one_refusal_written(practice, edit, "not-permitted")
    sign = lambda: colleague.sign_note(draft.note_id)  # noqa: E731
    one_refusal_written(practice, sign, "not-permitted")
    one_refusal_written(practice, lambda: owner.sign_note(draft.note_id), "not-permitted")

    def the_note() -> dict[str, Any]:
        entries = author.chart(patient).entries
        (note,) = [e.state for e in entries if e.entry_id == draft.note_id]
        return note

    assert the_note()["text"] == "BP 120/80" and the_note()["signed_at"] is None
    assert the_note()["author_id"] == str(casey.user_id)

    # The colleague adds to the chart in their own name.
    own = colleague.draft_note(patient, "progress", "second opinion: recheck BP")
    colleague.sign_note(own.note_id)
    # The author edits and signs; then anyone with the chart may add an addendum, as themselves.
    author.edit_note(draft.note_id, "BP 125/80")
    assert author.sign_note(draft.note_id).signed
    assert colleague.amend_note(draft.note_id, "I saw the patient too", "late entry").addenda == 1
    note = the_note()
    assert (note["text"], note["signed_by"]) == ("BP 125/80", str(casey.user_id))
    assert note["addenda"][0]["author_id"] == str(mallory.user_id)

    events = [e for e in refusals_of(practice, mallory) if e.target_id == draft.note_id]
    assert [(e.action, e.data_category, e.reason) for e in events] == [
        ("change", "notes", "not-the-author"),
        ("change", "notes", "not-the-author"),
    ]
    rows = owner.audit(patient_id=patient, user_id=mallory.user_id)
    assert [(r.action, r.outcome) for r in rows if r.event_type == REFUSAL] == [
        ("change", "failure"),
        ("change", "failure"),
    ]


def test_an_office_manager_opens_no_chart_through_accounts_they_made(practice: Practice) -> None:
    """The office manager (staff and user administrator) creates a clinician, spends the
    enrollment code themselves, and books that clinician, assigns them, or has a staff account
    they also made book them: no chart opens, because one person may hold both accounts. The
    owner's own booking of a clinician the manager made, and a colleague's booking of one the
    owner made, still open it."""
    owner = practice.owner()
    manager_member = office_manager(practice, owner)
    manager = manager_member.client()
    patient = a_patient(owner, "MRN-OM")

    def own_account(username: str, role: str) -> Member:
        made = manager.create_user(username, username.title(), role)
        enrolled = practice.client().enroll(username, made.enrollment_code, "puppet-password-1")
        assert enrolled.totp_secret is not None
        secret = auth.from_base32(enrolled.totp_secret)
        return Member(practice, made.user_id, username, "puppet-password-1", secret)

    puppet, desk = own_account("dr.puppet", "clinician"), own_account("puppet.desk", "staff")
    as_puppet = puppet.client()
    manager.book(appointment(patient, puppet.user_id, 1))
    refused(lambda: as_puppet.chart(patient))
    manager.assign_care(patient, puppet.user_id)
    refused(lambda: as_puppet.chart(patient))
    desk.client().book(appointment(patient, puppet.user_id, 2))
    one_refusal_written(practice, lambda: as_puppet.chart(patient), "break-glass-required")

    # Someone who holds neither account puts the clinician in care: it opens.
    owner.book(appointment(patient, puppet.user_id, 3))
    assert as_puppet.chart(patient).entries
    # And the manager's bookings of a clinician the owner made count as ever.
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    other = a_patient(owner, "MRN-OM2")
    manager.book(appointment(other, casey.user_id, 4))
    assert casey.client().chart(other).entries


def test_a_clinician_booking_a_colleague_arranges_no_care(
    practice: Practice, team: dict[str, Any]
) -> None:
    """Care is arranged by the front desk or an owner: a clinician who books a colleague (say,
    two who would open each other's patients' charts) gives them nothing, and the colleague's
    chart open is refused and recorded; the same booking by staff opens it."""
    owner, staff = team["owner"], team["staff"].client()
    mallory, casey = team["mallory"], team["casey"]
    patient, as_casey = a_patient(owner, "MRN-COL"), casey.client()
    mallory.client().book(appointment(patient, casey.user_id, 1))
    one_refusal_written(practice, lambda: as_casey.chart(patient), "break-glass-required")
    staff.book(appointment(patient, casey.user_id, 2))
    assert as_casey.chart(patient).entries
