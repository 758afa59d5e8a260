"""The console's status, audit, access-report and break-glass pages over HTTP, on both stores
(issue 18): they show what the API's functions return, with people named, record their own
reading as the API does, and refuse (403 page, recorded) a role that may not see them."""

from __future__ import annotations

import csv
import io

import pytest
from fastapi.testclient import TestClient

from tests.e2e.conftest import OWNER, OWNER_PASSWORD, Practice, add_member, events_of_type
from tests.e2e.console import form_token, member_signs_in, sign_in
from tests.e2e.test_clinical import ada

ROLE_REFUSED = "domain.refusals:RoleRefusal.Refused"
ACCESS = "domain.access:Access.Recorded"


def owner_tab(practice: Practice) -> TestClient:
    return sign_in(practice, OWNER, OWNER_PASSWORD, practice.totp_secret)


def test_the_status_page_shows_checkpoints_backups_and_background_loops(
    practice: Practice,
) -> None:
    tab = owner_tab(practice)
    page = tab.get("/console/status")
    assert page.status_code == 200, page.text
    for words in [
        "Events in the log",
        "Newest signed checkpoint",
        "No witness is configured",
        "No backup has been taken.",
        "checkpoint-signer",
        "views-follower",
        "never-ran",  # background=False in these tests: no loop ever ran in this home
    ]:
        assert words in page.text, words
    # A checkpoint signed through the API shows on the page.
    bearer = {"Authorization": f"Bearer {practice.owner().token}"}
    size = practice.http.post("/checkpoints", headers=bearer).json()["size"]
    assert f"size {size}, signed" in tab.get("/console/status").text


def test_break_glass_is_reviewed_and_its_alert_acknowledged_in_the_console(
    practice: Practice,
) -> None:
    owner = practice.owner()
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    drew = add_member(practice, owner, "drew", "Dr. Drew", "clinician").client()
    rita = add_member(practice, owner, "rita", "Rita Risk", "risk_manager")
    patient = casey.register_patient(ada())
    emergency = drew.break_glass(patient.patient_id, "unresponsive in the waiting room", 30)

    tab = member_signs_in(rita)
    queue = tab.get("/console/break-glass")
    assert queue.status_code == 200
    assert "Dr. Drew opened Ada Quill (MRN MRN-7)" in queue.text
    assert "unresponsive in the waiting room" in queue.text
    path = f"/console/break-glass/{emergency.emergency_access_id}/review"
    token = form_token(queue.text)
    # No outcome chosen: refused in words, nothing recorded.
    refused = tab.post(path, data={"csrf_token": token})
    assert refused.status_code == 422 and "outcome" in refused.text
    done = tab.post(path, data={"csrf_token": token, "outcome": "appropriate", "note": "ok"})
    assert done.status_code == 303
    after = tab.get("/console/break-glass").text
    assert "Review recorded." in after and "Nothing awaits review." in after
    assert [e.outcome for e in owner.break_glass_queue()] == ["appropriate"]
    # The review queue is for risk managers and owners: the alerts page is the owners'.
    assert tab.get("/console/alerts").status_code == 403

    mine = owner_tab(practice)
    alerts = mine.get("/console/alerts")
    assert "break-glass by Dr. Drew on Ada Quill" in alerts.text
    (alert,) = owner.alerts(acknowledged=False)
    answer = mine.post(
        f"/console/alerts/{alert.alert_id}/acknowledge",
        data={"csrf_token": form_token(alerts.text)},
    )
    assert answer.status_code == 303
    assert owner.alerts(acknowledged=False) == []
    assert "No new alerts." in mine.get("/console/alerts").text


def test_the_audit_view_filters_downloads_csv_and_records_its_reading(
    practice: Practice,
) -> None:
    owner = practice.owner()
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    patient = casey.register_patient(ada())
    auditor = add_member(practice, owner, "avery", "Avery Auditor", "auditor")
    tab = member_signs_in(auditor)
    first = tab.get("/console/audit")
    assert first.status_code == 200 and "<table>" not in first.text  # nothing read until asked
    reads = len(events_of_type(practice, ACCESS))

    filters = {"show": "1", "patient_id": str(patient.patient_id)}
    page = tab.get("/console/audit", params=filters)
    assert page.status_code == 200
    assert "Dr. Casey" in page.text  # people by name
    assert "Ada Quill (MRN MRN-7)" in page.text
    assert len(events_of_type(practice, ACCESS)) == reads + 1  # the reading, recorded
    download = tab.get("/console/audit.csv", params=filters)
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="audit.csv"'
    rows = list(csv.DictReader(io.StringIO(download.text)))
    assert rows and {r["patient_id"] for r in rows} == {str(patient.patient_id)}

    failures = tab.get("/console/audit", params={"show": "1", "outcome": "failure"})
    assert "success</td>" not in failures.text
    bad = tab.get("/console/audit", params={"show": "1", "since": "yesterday", "action": "x"})
    assert bad.status_code == 422
    assert "since is not a date and time" in bad.text and "action must be one of" in bad.text

    report = tab.get(f"/console/patients/{patient.patient_id}/access-report")
    assert report.status_code == 200 and "Access report: Ada Quill" in report.text
    report_csv = tab.get(f"/console/patients/{patient.patient_id}/access-report.csv")
    assert report_csv.status_code == 200 and report_csv.text.startswith("event_time,")


@pytest.mark.parametrize(
    ("role", "path", "needs"),
    [
        ("auditor", "/console/break-glass", "risk_manager"),
        ("risk_manager", "/console/status", "auditor"),
        ("user_admin", "/console/audit", "auditor or risk_manager"),
        ("auditor", "/console/alerts", "owner"),
    ],
)
def test_a_page_refuses_a_role_that_may_not_see_it(
    practice: Practice, role: str, path: str, needs: str
) -> None:
    member = add_member(practice, practice.owner(), "mo", "Mo Member", role)
    tab = member_signs_in(member)
    page = tab.get(path)
    assert page.status_code == 403
    assert f"this needs the role {needs}" in page.text
    assert 'role="alert"' in page.text
    (refusal,) = events_of_type(practice, ROLE_REFUSED)
    assert refusal.route == f"GET {path}"  # type: ignore[attr-defined]
    assert refusal.user_id == member.user_id  # type: ignore[attr-defined]
