"""Imports over HTTP with the thin client, on both stores: a job whose result is the report when
written, a 422 ``import-rejected`` problem listing every rejection (and nothing written but the
job's start and end) when not, roles enforced before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.client import Client, Forbidden, Unprocessable
from tests.e2e.conftest import JOB_EVENTS, Practice, add_member

FIXTURES = Path(__file__).parent.parent / "fixtures" / "imports"
MAP = (FIXTURES / "billing_map.json").read_text()


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def logged_in(practice: Practice, owner: Client, username: str, role: str) -> Client:
    return add_member(practice, owner, username, username.title(), role).client()


def test_patients_then_labs_then_messages_over_http(practice: Practice) -> None:
    owner = practice.owner()
    staff = logged_in(practice, owner, "sam", "staff")
    clinician = logged_in(practice, owner, "casey", "clinician")

    with pytest.raises(Forbidden):
        clinician.import_patients(fixture("patients_good.csv"), MAP)
    with pytest.raises(Forbidden):
        staff.import_labs(fixture("oru_good.hl7"))

    report = staff.import_patients(
        fixture("patients_good.csv"), MAP, source_name="patients_good.csv"
    )
    assert (report.written, report.items, report.accepted, report.rejected) == (True, 3, 3, 0)
    assert len(report.created) == 3 and report.import_id is not None

    before = practice.leaves()
    with pytest.raises(Unprocessable) as refused:
        staff.import_patients(fixture("patients_good.csv"), MAP)  # the same file again
    problem = refused.value.problem
    assert problem["type"] == "urn:chartledger:problem:import-rejected"
    assert problem["report"]["written"] is False
    assert problem["report"]["rejections"] == [
        {"location": f"row {n}", "reasons": ["mrn already belongs to a patient of this practice"]}
        for n in (2, 3, 4)
    ]
    # Nothing of the import: only its job's start and end (Job.Started, Job.Finished).
    assert practice.leaves() == before + JOB_EVENTS

    # The labs name MRN-1001 / MRN-1002: an owner registers those two, then a clinician without
    # a care relationship is refused per message, and the owner imports them.
    hl7 = fixture("oru_good.hl7").replace(b"MRN-1001", b"A-1001").replace(b"MRN-1002", b"A-1002")
    with pytest.raises(Unprocessable) as refused:
        clinician.import_labs(hl7)
    assert [r["location"] for r in refused.value.problem["report"]["rejections"]] == [
        "message 1",
        "message 2",
    ]
    # Nothing of the import is written; each refused chart is an audit row (issue 17), under
    # the clinician and that patient (and the two jobs' starts and ends).
    assert practice.leaves() == before + 2 + 2 * JOB_EVENTS
    refusals = [
        (row.patient_id, row.data_category, row.reason)
        for row in owner.audit(user_id=clinician.me().user_id, action="create")
        if row.event_type == "domain.access:Refusal.Refused"
    ]
    named = [str(owner.search_patients(mrn)[0].patient_id) for mrn in ("A-1001", "A-1002")]
    assert sorted(refusals) == sorted((p, "labs", "no-care-relationship") for p in named)
    labs = owner.import_labs(hl7, source_name="oru_good.hl7")
    assert (labs.written, labs.accepted, len(labs.created)) == (True, 2, 5)
    jane = report.created[0]
    chart = owner.chart(jane)
    [glucose] = [e for e in chart.entries if e.state.get("loinc_code") == "2345-7"]
    assert (glucose.state["value"], glucose.state["unit"]) == ("5.2", "mg/dL")

    with pytest.raises(Unprocessable) as refused:
        owner.import_labs(fixture("oru_broken.hl7"), accept_valid=True)
    assert refused.value.problem["report"]["rejected"] == 4

    email = owner.import_email(fixture("email_question.eml"), jane)
    assert (email.written, email.accepted) == (True, 1)
    before = practice.leaves()
    with pytest.raises(Unprocessable) as refused:
        owner.import_email(fixture("email_no_headers.eml"), jane, source_name="x.eml")
    assert refused.value.problem["report"]["rejections"] == [
        {"location": "x.eml", "reasons": ["raw email line 1 is not a header field (RFC 5322 §2.2)"]}
    ]
    sms = owner.import_sms(fixture("sms_broken.xml"), jane, accept_valid=True)
    assert (sms.written, sms.accepted, sms.rejected) == (True, 1, 3)
    # thread started, one SMS, the summary; the two jobs' starts and ends
    assert practice.leaves() == before + 3 + 2 * JOB_EVENTS
