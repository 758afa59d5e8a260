"""Break-glass (``api/care.py`` says who needs it): declare, alert the owners, review.

Declaring saves three things in one append: the ``EmergencyAccess`` (the review queue's entry),
an ``Alert`` for the owners, and the flag on the declaring session. The queue and the alerts
name patients, so reading them is recorded (category ``audit``) before they are returned.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import status

from api.auth import Principal, load, now
from api.deps import LedgerDep
from api.roles import Clinician, Owner, require_role
from api.routing import Router
from api.schemas import AlertOut, BreakGlassIn, BreakGlassOut, ReviewIn
from domain.access import Access
from domain.emergency import Alert, EmergencyAccess
from domain.patients import Patient
from domain.sessions import Session
from events.ledger import Ledger

router = Router(tags=["break-glass"])
# Owners and risk managers review (auditors read the audit view only).
ReviewerDep = Annotated[Principal, require_role("risk_manager")]


def _all(ledger: Ledger, topic: str, kind: type[Any]) -> list[Any]:
    with ledger.db.read() as c:
        c.execute("SELECT originator_id FROM stored_events WHERE topic = ?", (topic,))
        ids = [UUID(str(row[0])) for row in c.fetchall()]
    found = [load(ledger, i, kind) for i in ids]
    return sorted(found, key=lambda a: (a.at, str(a.id)))


def _out(e: EmergencyAccess) -> BreakGlassOut:
    return BreakGlassOut(
        emergency_access_id=e.id,
        user_id=e.user_id,
        patient_id=e.patient_id,
        session_id=e.session_id,
        reason=e.reason,
        declared_at=e.at,
        until=e.until,
        reviewed_by=e.reviewed_by,
        reviewed_at=e.reviewed_at,
        outcome=e.outcome,
        review_note=e.review_note,
    )


def _record_read(ledger: Ledger, principal: Any) -> None:
    read = Access.record(
        user_id=principal.user_id,
        action="query",
        data_category="audit",
        purpose_of_use="HOPERAT",
        at=now(),
    )
    with principal.acting():
        ledger.save(read)


@router.post("/patients/{patient_id}/break-glass", status_code=status.HTTP_201_CREATED)
def declare(
    patient_id: UUID, body: BreakGlassIn, principal: Clinician, ledger: LedgerDep
) -> BreakGlassOut:
    """Declare an emergency: this session may open the patient's chart for ``minutes``.
    Every event under it is flagged, the owners are alerted, and it awaits review."""
    load(ledger, patient_id, Patient)
    at = now()
    until = at + timedelta(minutes=body.minutes)
    emergency = EmergencyAccess.declare(
        user_id=principal.user_id,
        patient_id=patient_id,
        session_id=principal.session_id,
        reason=body.reason,
        at=at,
        until=until,
    )
    alert = Alert.raise_(
        kind="break_glass",
        about=emergency.id,
        user_id=principal.user_id,
        patient_id=patient_id,
        at=at,
    )
    session = load(ledger, principal.session_id, Session)
    session.start_emergency_access(
        access_id=emergency.id, patient_id=patient_id, at=at, until=until
    )
    with principal.acting():
        ledger.save(emergency, alert, session)
    return _out(emergency)


@router.get("/break-glass")
def review_queue(
    principal: ReviewerDep, ledger: LedgerDep, reviewed: bool | None = None
) -> list[BreakGlassOut]:
    """Every emergency access, oldest first; ``reviewed=false`` for those awaiting review."""
    return [_out(e) for e in emergency_accesses(ledger, principal, reviewed)]


def emergency_accesses(
    ledger: Ledger, principal: Principal, reviewed: bool | None = None
) -> list[EmergencyAccess]:
    """The review queue (the API's and the console's): its reading recorded first."""
    _record_read(ledger, principal)
    found = _all(ledger, "domain.emergency:EmergencyAccess.Declared", EmergencyAccess)
    if reviewed is not None:
        found = [e for e in found if (e.outcome is not None) == reviewed]
    return found


@router.post("/break-glass/{emergency_access_id}/review")
def review(
    emergency_access_id: UUID, body: ReviewIn, principal: ReviewerDep, ledger: LedgerDep
) -> BreakGlassOut:
    return _out(review_access(ledger, principal, emergency_access_id, body.outcome, body.note))


def review_access(
    ledger: Ledger, principal: Principal, emergency_access_id: UUID, outcome: str, note: str | None
) -> EmergencyAccess:
    """Record the review of an emergency access (the API's and the console's)."""
    emergency = load(ledger, emergency_access_id, EmergencyAccess)
    emergency.review(by=principal.user_id, at=now(), outcome=outcome, note=note)
    with principal.acting():
        ledger.save(emergency)
    return emergency


def _alert_out(a: Alert) -> AlertOut:
    return AlertOut(
        alert_id=a.id,
        kind=a.kind,
        about=a.about,
        user_id=a.user_id,
        patient_id=a.patient_id,
        raised_at=a.at,
        acknowledged_by=a.acknowledged_by,
        acknowledged_at=a.acknowledged_at,
    )


@router.get("/alerts")
def alerts(principal: Owner, ledger: LedgerDep, acknowledged: bool | None = None) -> list[AlertOut]:
    """The owners' alerts (the outbox), oldest first; ``acknowledged=false`` for new ones."""
    return [_alert_out(a) for a in owner_alerts(ledger, principal, acknowledged)]


def owner_alerts(
    ledger: Ledger, principal: Principal, acknowledged: bool | None = None
) -> list[Alert]:
    """The owners' alerts (the API's and the console's): their reading recorded first."""
    _record_read(ledger, principal)
    found = _all(ledger, "domain.emergency:Alert.Raised", Alert)
    if acknowledged is not None:
        found = [a for a in found if (a.acknowledged_by is not None) == acknowledged]
    return found


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: UUID, principal: Owner, ledger: LedgerDep) -> AlertOut:
    return _alert_out(acknowledged_alert(ledger, principal, alert_id))


def acknowledged_alert(ledger: Ledger, principal: Principal, alert_id: UUID) -> Alert:
    """Acknowledge an alert (the API's and the console's)."""
    alert = load(ledger, alert_id, Alert)
    alert.acknowledge(by=principal.user_id, at=now())
    with principal.acting():
        ledger.save(alert)
    return alert
