"""The rest of the record over HTTP with the thin client, on both stores: problems,
medications, allergies, vitals, appointments and the provider's day, documents, messages (secure,
email, SMS), amendment requests, disclosures, checkpoints on demand and store verification."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

import pytest

from api import schemas
from api.client import Conflict, Forbidden, Unprocessable
from tests.e2e.conftest import Practice, add_member
from tests.e2e.test_clinical import ada, staffed

EMAIL = b"From: ada@example.org\r\nSubject: refill\r\n  please\r\n\r\nMy pills ran out.\r\n"


def test_every_kind_of_record_through_the_api(practice: Practice) -> None:
    owner, casey, risk = staffed(practice)
    staff = add_member(practice, owner, "sam", "Sam", "staff").client()
    me = casey.me().user_id
    patient = staff.register_patient(ada())
    pid = patient.patient_id

    # An appointment makes the care relationship; the provider's day shows any clash.
    start = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    visit = staff.book(
        schemas.AppointmentIn(
            patient_id=pid,
            provider_id=me,
            start=start,
            end=start + timedelta(minutes=30),
            reason="check-up",
        )
    )
    with pytest.raises(Conflict) as clash:
        staff.book(
            schemas.AppointmentIn(
                patient_id=pid,
                provider_id=me,
                start=start + timedelta(minutes=15),
                end=start + timedelta(minutes=45),
                reason="again",
            )
        )
    assert clash.value.type.endswith("double-booking")
    moved = staff.reschedule(
        visit.appointment_id, start + timedelta(hours=1), start + timedelta(hours=2)
    )
    assert moved.start == start + timedelta(hours=1)
    assert staff.check_in(visit.appointment_id).status == "checked_in"
    second = staff.book(
        schemas.AppointmentIn(
            patient_id=pid,
            provider_id=me,
            start=start,
            end=start + timedelta(minutes=30),
            reason="follow-up",
        )
    )
    assert staff.cancel_appointment(second.appointment_id, "patient called").status == "cancelled"
    day = staff.schedule(me, date(2030, 3, 4))
    assert [(a.status, a.reason) for a in day.appointments] == [
        ("cancelled", "follow-up"),
        ("checked_in", "check-up"),
    ]
    assert day.conflicts == []

    problem = casey.record_problem(
        schemas.ProblemIn(patient_id=pid, description="Hypertension", code="38341003")
    )
    casey.resolve_problem(problem.entry_id, schemas.ResolveIn(resolved_on=date(2030, 3, 5)))
    med = casey.start_medication(
        schemas.MedicationIn(
            patient_id=pid,
            drug="metformin",
            dose_value="500",
            dose_unit="mg",
            started_on=date(2030, 3, 4),
        )
    )
    casey.change_dose(
        med.entry_id,
        schemas.DoseChangeIn(
            dose_value="1000", dose_unit="mg", changed_on=date(2030, 3, 5), reason="A1c"
        ),
    )
    casey.record_allergy(
        schemas.AllergyIn(patient_id=pid, substance="penicillin", severity="severe")
    )
    casey.record_vital(
        schemas.VitalIn(
            patient_id=pid,
            loinc_code="8867-4",
            name="Heart rate",
            value="72",
            unit="/min",
            measured_at=start,
        )
    )
    with pytest.raises(Unprocessable):  # as sent by a client that does not check (VitalIn does)
        bad = {"value": "72.x", "unit": "/min", "measured_at": start.isoformat()}
        casey.request(
            "POST",
            "/vitals",
            json={"patient_id": str(pid), "loinc_code": "8867-4", "name": "Heart rate", **bad},
        )

    content = b"%PDF-1.4 referral letter"
    doc = casey.upload_document(content, "referral.pdf", "application/pdf", pid)
    assert doc.sha256 == hashlib.sha256(content).hexdigest() and doc.size == len(content)
    assert casey.document(doc.document_id) == content

    secure = casey.start_thread(schemas.ThreadIn(kind="secure", topic="results", patient_ids=[pid]))
    casey.post_message(secure.thread_id, "Your results are normal.")
    email = staff.start_thread(schemas.ThreadIn(kind="email", topic="refill", patient_ids=[pid]))
    # Staff start threads about a patient; adding to them or reading them needs the chart.
    with pytest.raises(Forbidden):
        staff.ingest_email(email.thread_id, EMAIL)
    casey.ingest_email(email.thread_id, EMAIL)
    sms = staff.start_thread(schemas.ThreadIn(kind="sms", topic="sms", patient_ids=[pid]))
    casey.ingest_sms(
        sms.thread_id,
        schemas.SmsIn(
            from_number="+15550100",
            to_number="+15550199",
            body="running late",
            sent_at="1795000000000",
            provider_metadata={"segments": 1, "price": "0.0075"},
        ),
    )
    # The sent time as received and as read, next to the time recorded (issue 19: 5).
    [texted] = casey.thread(sms.thread_id).entries
    assert texted.original_times["sent"]["instant"] == "2026-11-18T11:06:40.000000Z"
    assert texted.original_times["sent"]["raw"] == "1795000000000"
    assert texted.recorded_at is not None and texted.recorded_at.endswith("Z")
    with pytest.raises(Forbidden):
        staff.thread(email.thread_id)
    read = casey.thread(email.thread_id)
    assert read.entries[0].kind == "email"
    assert read.entries[0].fields["headers"][1] == ["Subject", " refill\r\n  please"]
    assert casey.thread(secure.thread_id).entries[0].fields["body"] == "Your results are normal."

    notes = casey.draft_note(pid, "progress", "BP 150/95")
    request = casey.request_amendment(
        schemas.AmendmentIn(
            patient_id=pid,
            target_type="note",
            target_id=notes.note_id,
            requested_change="BP was 130/85",
            reason="misread",
            received_at=start,
        )
    )
    denied = casey.decide_amendment(
        request.amendment_request_id,
        "deny",
        schemas.DenyIn(basis="accurate_and_complete", denial_text="measured twice"),
    )
    assert denied.status == "denied"
    casey.decide_amendment(
        request.amendment_request_id, "disagreement", schemas.StatementIn(text="I disagree")
    )
    done = casey.decide_amendment(
        request.amendment_request_id, "rebuttal", schemas.StatementIn(text="we stand by it")
    )
    assert done.has_disagreement and done.has_rebuttal

    casey.record_disclosure(
        schemas.DisclosureIn(
            patient_id=pid,
            disclosed_at=start,
            recipient_name="County Health",
            description="immunisation record",
            purpose="public health reporting",
        )
    )
    assert [d.recipient_name for d in risk.disclosures(pid)] == ["County Health"]
    with pytest.raises(Forbidden):
        staff.disclosures(pid)

    # Every read of PHI above is in the patient's access report.
    categories = {r.data_category for r in risk.access_report(pid)}
    assert {"appointments", "documents", "messages", "audit"} <= categories

    size = owner.issue_checkpoint().size
    assert size > 0 and owner.latest_checkpoint().splitlines()[1] == str(size)
    with pytest.raises(Forbidden):
        casey.issue_checkpoint()
    status = owner.verify_store()
    assert status.ok and status.problems == [] and status.size >= size
    with pytest.raises(Forbidden):
        risk.verify_store()
