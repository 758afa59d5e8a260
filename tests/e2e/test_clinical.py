"""The issue's story over HTTP with the thin client, on both stores: log in with TOTP, create a
patient, record a lab, sign a note, amend it, read the chart, and find the read in the audit view
and the patient's access report. Bad input gets a 4xx problem and writes nothing."""

from __future__ import annotations

import base64
import sqlite3
import threading
from datetime import UTC, date, datetime
from uuid import UUID, uuid4

import psycopg
import pytest

from api.client import ApiError, Client, Conflict, Forbidden, NotFound, Unprocessable
from api.schemas import LabIn, PatientIn
from events.config import parse_database_url
from events.ledger import Ledger
from tests.e2e.conftest import Practice, add_member

HL7 = "MSH|^~\\&|LAB|ACME\rOBX|1|NM|2345-7^Glucose^LN||5.2|mg/dL|3.9-5.5\r"


def ada() -> PatientIn:
    return PatientIn(
        mrn="MRN-7",
        given_name="Ada",
        family_name="Quill",
        birth_date=date(1970, 1, 2),
        sex="female",
    )


def glucose(patient_id: UUID) -> LabIn:
    return LabIn(
        patient_id=patient_id,
        loinc_code="2345-7",
        test_name="Glucose",
        value="5.2",
        unit="mg/dL",
        performing_lab="ACME",
        reference_range="3.9-5.5",
        source_format="HL7v2",
        source_message=HL7,
    )


def staffed(practice: Practice) -> tuple[Client, Client, Client]:
    """The owner, a clinician and a risk manager (TOTP), each logged in."""
    owner = practice.owner()
    clinician = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    risk = add_member(practice, owner, "rita", "Rita", "risk_manager").client()
    return owner, clinician, risk


def in_care(by: Client, patient_id: UUID, clinician: Client) -> None:
    """``by`` (an owner or staff) puts the clinician on the patient's care team: nobody puts
    themselves there, and without it the chart needs break-glass (api/care.py)."""
    by.assign_care(patient_id, clinician.me().user_id)


def test_the_clinical_story_end_to_end(practice: Practice) -> None:
    owner, clinician, risk = staffed(practice)
    patient = clinician.register_patient(ada())
    in_care(owner, patient.patient_id, clinician)
    assert [p.patient_id for p in clinician.search_patients("quill")] == [patient.patient_id]

    lab = clinician.record_lab(
        glucose(patient.patient_id).model_copy(update={"collected_at": "202611200715-0500"})
    )
    assert (lab.value, lab.unit) == ("5.2", "mg/dL")
    conversion = clinician.convert_lab(lab.lab_id, "mmol/L")
    assert (conversion.converted_value, conversion.factor) == ("0.28860", "0.0555")

    note = clinician.draft_note(patient.patient_id, "progress", "BP fine")
    clinician.edit_note(note.note_id, "BP fine, glucose normal")
    assert clinician.sign_note(note.note_id).signed
    with pytest.raises(Conflict) as signed:
        clinician.edit_note(note.note_id, "BP high")
    assert signed.value.type.endswith("note-already-signed")
    before_addendum = datetime.now(UTC)
    assert clinician.amend_note(note.note_id, "BP recheck 150/95", "late entry").addenda == 1

    chart = clinician.chart(patient.patient_id)
    by_kind = {e.kind: e.state for e in chart.entries}
    assert by_kind["LabResult"]["value"] == "5.2" and by_kind["LabResult"]["unit"] == "mg/dL"
    assert base64.b64decode(by_kind["LabResult"]["source_message"]).decode() == HL7
    assert by_kind["LabResult"]["conversions"][0]["converted_value"] == "0.28860"
    # The collection time as sent and as read, next to the time it was recorded (issue 19: 4).
    [lab_entry] = [e for e in chart.entries if e.kind == "LabResult"]
    collected = lab_entry.original_times["collected"]
    assert (collected["raw"], collected["instant"]) == (
        "202611200715-0500", "2026-11-20T12:15:00.000000Z"
    )  # fmt: skip
    assert lab_entry.first_recorded.endswith("Z")
    assert by_kind["Note"]["text"] == "BP fine, glucose normal"
    assert by_kind["Note"]["addenda"][0]["text"] == "BP recheck 150/95"
    then = clinician.chart(patient.patient_id, as_of=before_addendum)
    assert {e.kind: e.state for e in then.entries}["Note"]["addenda"] == []

    me = str(clinician.me().user_id)
    report = risk.access_report(patient.patient_id)
    assert [(r.user_id, r.action, r.data_category) for r in report if r.user_id == me] == [
        (me, "query", "demographics"),
        (me, "access", "chart"),
        (me, "access", "chart"),
    ]
    audited = risk.audit(patient_id=patient.patient_id, user_id=me)
    assert [r.action for r in audited] == [
        "create",  # registered
        "create",  # its MRN claimed
        "query",
        "create",  # the lab
        "change",  # its conversion
        "create",  # the draft
        "change",
        "change",  # signed
        "change",  # amended
        "access",
        "access",
    ]
    assert {r.source for r in audited} == {str(clinician.me().session_id)}
    assert owner.audit(action="access")  # owners see everything


def test_each_role_reaches_only_its_routes(practice: Practice) -> None:
    owner, clinician, risk = staffed(practice)
    staff = add_member(practice, owner, "sam", "Sam", "staff").client()
    auditor = add_member(practice, owner, "abe", "Abe", "auditor").client()
    patient = staff.register_patient(ada())  # demographics: yes
    assert staff.search_patients("MRN-7")
    for reader in (staff, auditor, risk):
        with pytest.raises(Forbidden):
            reader.chart(patient.patient_id)
        with pytest.raises(Forbidden):
            reader.record_lab(glucose(patient.patient_id))
    with pytest.raises(Forbidden):
        auditor.register_patient(ada())
    for reader in (staff, clinician):
        with pytest.raises(Forbidden):
            reader.audit()
    assert auditor.audit()
    report = auditor.access_report(patient.patient_id)
    assert [(r.action, r.data_category, r.outcome) for r in report] == [
        ("query", "demographics", "success"),  # staff's search
        # staff's, the auditor's and the risk manager's refused chart opens (issue 17)
        *[("access", "access control", "failure")] * 3,
        ("access", "audit", "success"),  # the auditor reading this very report
    ]
    with pytest.raises(Forbidden):
        clinician.users()


def test_bad_input_gets_a_problem_and_writes_nothing(practice: Practice) -> None:
    owner, clinician, _ = staffed(practice)
    patient = clinician.register_patient(ada())
    in_care(owner, patient.patient_id, clinician)
    note = clinician.draft_note(patient.patient_id, "progress", "x")
    clinician.sign_note(note.note_id)
    lab = clinician.record_lab(glucose(patient.patient_id))
    good = glucose(patient.patient_id).model_dump(mode="json")
    raw = practice.http_client()
    raw.headers["Authorization"] = f"Bearer {clinician.token}"
    cases = [
        ("POST", "/labs", {"content": b'{"patient_id": ', "headers": JSON}, 400),
        ("POST", "/labs", {"json": {**good, "value": 5.2}}, 422),  # a float, not a string
        ("POST", "/labs", {"json": {**good, "value": "5,2"}}, 422),
        ("POST", "/labs", {"json": {**good, "unit": "mg dL"}}, 422),  # not UCUM syntax
        ("POST", "/labs", {"json": {**good, "patient_id": str(uuid4())}}, 404),
        ("POST", "/labs", {"json": {**good, "extra": "field"}}, 422),
        ("POST", "/labs", {"json": {**good, "source_message": "x" * 2_000_000}}, 413),
        ("POST", f"/labs/{uuid4()}/conversions", {"json": {"to_unit": "mmol/L"}}, 404),
        ("POST", f"/labs/{lab.lab_id}/conversions", {"json": {"to_unit": "[ft_i]"}}, 422),
        ("POST", f"/labs/{note.note_id}/conversions", {"json": {"to_unit": "mmol/L"}}, 404),
        ("POST", "/patients", {"json": {**ada().model_dump(mode="json"), "sex": "x"}}, 422),
        ("POST", "/patients", {"json": {**ada().model_dump(mode="json"), "birth_date": 1}}, 422),
        ("POST", f"/notes/{note.note_id}/sign", {}, 409),
        ("PUT", f"/notes/{note.note_id}", {"json": {"text": "changed"}}, 409),
        ("POST", f"/notes/{uuid4()}/sign", {}, 404),
        ("POST", f"/notes/{note.note_id}/addenda", {"json": {"text": "y"}}, 422),
        ("GET", "/patients/not-a-uuid/chart", {}, 422),
        # Malformed: a 422 (a well-formed attempt by a clinician is a recorded 403).
        ("POST", "/users", {"json": {"username": "x"}}, 422),
        ("GET", "/nowhere", {}, 404),
    ]
    before = practice.leaves()
    for method, path, kwargs, status in cases:
        response = raw.request(method, path, **kwargs)
        assert response.status_code == status, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["status"] == status and body["title"]
        assert "Quill" not in response.text
    assert practice.leaves() == before
    with pytest.raises(NotFound):
        clinician.chart(uuid4())  # a failed read is recorded as a failure: one event
    assert practice.leaves() == before + 1
    with pytest.raises(Unprocessable):  # sent raw: the client's UserIn refuses it unsent
        bad = {"username": "bad name", "name": "X", "role": "clinician"}
        owner.request("POST", "/users", json=bad)
    with pytest.raises(ApiError):
        owner.create_user("casey", "Again", "clinician")  # taken


JSON = {"content-type": "application/json"}


def refuse_access_events(ledger: Ledger) -> None:
    """The store itself refuses to record reads (a full disk, a broken trigger, a DBA's
    mistake): a trigger on the real table, as whoever runs the database could add."""
    config = ledger.config
    if config.database_url is None:
        with sqlite3.connect(config.sqlite_path, isolation_level=None) as conn:
            conn.execute(
                "CREATE TRIGGER refuse_reads BEFORE INSERT ON stored_events "
                "WHEN NEW.topic LIKE 'domain.access:%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        return
    location = parse_database_url(config.database_url)
    with psycopg.connect(location.conninfo(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{location.schema}"')
        conn.execute(
            "CREATE FUNCTION refuse_reads() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_reads BEFORE INSERT ON stored_events FOR EACH ROW "
            "WHEN (NEW.topic LIKE 'domain.access:%') EXECUTE FUNCTION refuse_reads()"
        )


def test_a_read_returns_nothing_when_its_access_event_cannot_be_written(
    practice: Practice,
) -> None:
    owner, clinician, _ = staffed(practice)
    patient = clinician.register_patient(ada())
    in_care(owner, patient.patient_id, clinician)
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    refuse_access_events(ledger)
    response = practice.http_client().get(
        f"/patients/{patient.patient_id}/chart",
        headers={"Authorization": f"Bearer {clinician.token}"},
    )
    assert response.status_code >= 400 and "Quill" not in response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "entries" not in response.json()


def test_an_mrn_names_one_patient_even_when_two_registrations_race(practice: Practice) -> None:
    owner, clinician, _ = staffed(practice)
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    first = clinician.register_patient(ada())
    before = _event_count(ledger)
    with pytest.raises(Conflict) as refused:
        owner.register_patient(ada().model_copy(update={"given_name": "Someone"}))
    assert refused.value.type.endswith("duplicate-identifier")
    assert "Quill" not in str(refused.value.problem) and ada().mrn not in str(refused.value.problem)
    assert _event_count(ledger) == before

    # Six clients in the clinician's session (a TOTP code logs in once).
    racers = [Client(http=practice.http_client(), token=clinician.token) for _ in range(6)]
    start = threading.Barrier(len(racers))
    won: list[UUID] = []
    lost: list[Exception] = []

    def register(client: Client) -> None:
        start.wait()
        try:
            won.append(
                client.register_patient(ada().model_copy(update={"mrn": "RACE-1"})).patient_id
            )
        except Conflict as e:
            lost.append(e)

    threads = [threading.Thread(target=register, args=(c,)) for c in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == len(racers) - 1
    assert {p.patient_id for p in clinician.search_patients("RACE-1")} == set(won)
    assert first.patient_id not in won


def _event_count(ledger: Ledger) -> int:
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM stored_events WHERE topic NOT LIKE 'domain.access:%'")
        return int(c.fetchone()[0])
