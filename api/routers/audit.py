"""The audit view (ASTM E2147 fields, any period, sortable by every field) and a patient's
access report. Reading either is itself recorded (category ``audit``)."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from api.auth import now
from api.deps import LedgerDep, RunnerDep
from api.roles import AuditReader
from api.routing import Router
from api.schemas import AccessRowOut, AuditRowOut, Purpose
from domain.access import Access
from projections.audit import COLUMNS, audit_report
from projections.reads import Reader, read_access_report

router = Router(tags=["audit"])

SortBy = Literal[COLUMNS]  # every field of the audit view (ONC 170.315(d)(3))
Action = Literal[
    "create", "change", "void", "query", "access", "print", "copy", "export", "disclose"
]


@router.get("/audit")
def report(
    principal: AuditReader,
    ledger: LedgerDep,
    runner: RunnerDep,
    since: str | None = None,
    until: str | None = None,
    sort_by: SortBy = "event_time",
    descending: bool = False,
    patient_id: UUID | None = None,
    user_id: UUID | None = None,
    action: Action | None = None,
    purpose: Purpose = "HOPERAT",
) -> list[AuditRowOut]:
    """Audit rows whose event time is in [since, until) (ledger timestamps, e.g.
    ``2026-11-25T06:45:05.123456Z``)."""
    read = Access.record(
        user_id=principal.user_id,
        patient_id=patient_id,
        action="query",
        data_category="audit",
        purpose_of_use=purpose,
        at=now(),
    )
    with principal.acting():
        ledger.save(read)
    runner.catch_up_to()
    rows = audit_report(
        ledger.db,
        since,
        until,
        sort_by=sort_by,
        descending=descending,
        patient_id=None if patient_id is None else str(patient_id),
        user_id=None if user_id is None else str(user_id),
        action=action,
    )
    return [AuditRowOut(**row) for row in rows]


@router.get("/patients/{patient_id}/access-report")
def access_report(
    patient_id: UUID,
    principal: AuditReader,
    ledger: LedgerDep,
    runner: RunnerDep,
    purpose: Purpose = "HOPERAT",
) -> list[AccessRowOut]:
    """Who read this patient's record, when, what and why."""
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    return [AccessRowOut(**row) for row in read_access_report(ledger, runner, reader, patient_id)]
