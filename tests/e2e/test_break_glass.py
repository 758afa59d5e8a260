"""Break-glass over HTTP, on both stores: a clinician without a care relationship is refused,
declares an emergency, reads and writes under it (every event flagged), the owners are alerted,
and the access is reviewed; it ends on time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.client import Conflict, Forbidden
from tests.e2e.conftest import Practice, add_member
from tests.e2e.test_clinical import ada, glucose, in_care, staffed


def test_break_glass_is_allowed_loud_flagged_and_reviewed(practice: Practice) -> None:
    owner, casey, risk = staffed(practice)
    drew_member = add_member(practice, owner, "drew", "Dr. Drew", "clinician")
    drew = drew_member.client()
    patient = casey.register_patient(ada())
    in_care(owner, patient.patient_id, casey)  # Casey's patient: Casey may open the chart
    assert casey.chart(patient.patient_id).entries

    with pytest.raises(Forbidden) as refused:
        drew.chart(patient.patient_id)
    assert refused.value.type.endswith("break-glass-required")
    with pytest.raises(Forbidden):
        drew.record_lab(glucose(patient.patient_id))
    assert "Quill" not in str(refused.value.problem)

    emergency = drew.break_glass(patient.patient_id, "unresponsive in the waiting room", 30)
    assert emergency.until - emergency.declared_at == timedelta(minutes=30)
    chart = drew.chart(patient.patient_id, purpose="TREAT")
    assert chart.entries
    drew.record_lab(glucose(patient.patient_id))

    # Every event under it is flagged: reads say ETREAT, all carry the break-glass session.
    session = str(drew.me().session_id)
    flagged = f"{session} break-glass:{emergency.emergency_access_id}"
    rows = risk.audit(patient_id=patient.patient_id, user_id=drew.me().user_id)
    under = [r for r in rows if r.source == flagged]
    assert [(r.action, r.purpose) for r in under] == [("access", "ETREAT"), ("create", None)]
    report = risk.access_report(patient.patient_id)
    assert ("access", "chart", "ETREAT") in [(r.action, r.data_category, r.purpose) for r in report]

    # Another clinician's session is not covered by Drew's emergency.
    with pytest.raises(Forbidden):
        other = drew_member.login()  # a session of his own
        other.chart(patient.patient_id)

    # The owners are alerted; the access waits for review by an owner or a risk manager.
    alerts = owner.alerts(acknowledged=False)
    assert [(a.kind, a.about, a.patient_id) for a in alerts] == [
        ("break_glass", emergency.emergency_access_id, patient.patient_id)
    ]
    owner.acknowledge_alert(alerts[0].alert_id)
    assert owner.alerts(acknowledged=False) == []
    with pytest.raises(Forbidden):
        drew.break_glass_queue()
    with pytest.raises(Forbidden):
        casey.alerts()
    queue = risk.break_glass_queue(reviewed=False)
    assert [q.emergency_access_id for q in queue] == [emergency.emergency_access_id]
    assert queue[0].reason == "unresponsive in the waiting room"
    done = risk.review_break_glass(emergency.emergency_access_id, "appropriate", "chart checked")
    assert done.outcome == "appropriate" and risk.break_glass_queue(reviewed=False) == []
    with pytest.raises(Conflict):
        owner.review_break_glass(emergency.emergency_access_id, "inappropriate")
    assert any(r.event_type.startswith("domain.emergency:") for r in risk.audit())


def test_break_glass_ends_when_its_time_is_up(
    practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, casey, _ = staffed(practice)
    patient = owner.register_patient(ada())
    casey.break_glass(patient.patient_id, "emergency: chest pain on the phone", 5)
    assert casey.chart(patient.patient_id).entries
    later = datetime.now(UTC) + timedelta(minutes=6)
    monkeypatch.setattr("api.care.now", lambda: later)
    with pytest.raises(Forbidden):
        casey.chart(patient.patient_id)


def test_staff_cannot_break_the_glass(practice: Practice) -> None:
    owner, _, risk = staffed(practice)
    staff = add_member(practice, owner, "sam", "Sam", "staff").client()
    patient = staff.register_patient(ada())
    for who in (staff, risk):
        with pytest.raises(Forbidden):
            who.break_glass(patient.patient_id, "I need to see this chart now")
