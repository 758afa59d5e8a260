"""The audit view (ASTM E2147 fields, any period, sortable by every field) and a patient's
access report, as JSON or as CSV (``/audit.csv``, ``/patients/{id}/access-report.csv``: every
field, guarded against formula injection, ``api/csv_export.py``). Reading either is itself
recorded (category ``audit``), whatever the format."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import Depends, Response

from api.auth import Principal, now
from api.csv_export import CsvResponse, csv_content, csv_response
from api.deps import LedgerDep, RunnerDep
from api.instants import InstantQuery
from api.roles import AuditReader
from api.routing import Router
from api.schemas import AccessRowOut, AuditRowOut, Purpose
from domain.access import Access
from events.ledger import Ledger
from projections.access_report import ACCESS_COLUMNS
from projections.audit import COLUMNS, audit_report
from projections.reads import Reader, read_access_report
from projections.runner import Runner

router = Router(tags=["audit"])

SortBy = Literal[COLUMNS]  # every field of the audit view (ONC 170.315(d)(3))
Action = Literal[
    "create", "change", "void", "query", "access", "print", "copy", "export", "disclose"
]


@dataclass(frozen=True)
class AuditQuery:
    """What ``GET /audit`` and ``/audit.csv`` both take: the period (``since``/``until``
    already normalised), the order and the filters, and why the view is read."""

    since: str | None
    until: str | None
    sort_by: str
    descending: bool
    patient_id: UUID | None
    user_id: UUID | None
    action: str | None
    purpose: str


def audit_query(
    since: InstantQuery = None,
    until: InstantQuery = None,
    sort_by: SortBy = "event_time",
    descending: bool = False,
    patient_id: UUID | None = None,
    user_id: UUID | None = None,
    action: Action | None = None,
    purpose: Purpose = "HOPERAT",
) -> AuditQuery:
    return AuditQuery(since, until, sort_by, descending, patient_id, user_id, action, purpose)


AuditQueryDep = Annotated[AuditQuery, Depends(audit_query)]


def audit_rows(
    principal: Principal, ledger: Ledger, runner: Runner, query: AuditQuery
) -> list[dict[str, Any]]:
    """The reading recorded first, then the rows."""
    read = Access.record(
        user_id=principal.user_id,
        patient_id=query.patient_id,
        action="query",
        data_category="audit",
        purpose_of_use=query.purpose,
        at=now(),
    )
    with principal.acting():
        ledger.save(read)
    runner.catch_up_to()
    return audit_report(
        ledger.reports_db("audit"),
        query.since,
        query.until,
        sort_by=query.sort_by,
        descending=query.descending,
        patient_id=None if query.patient_id is None else str(query.patient_id),
        user_id=None if query.user_id is None else str(query.user_id),
        action=query.action,
    )


@router.get("/audit")
def report(
    principal: AuditReader, ledger: LedgerDep, runner: RunnerDep, query: AuditQueryDep
) -> list[AuditRowOut]:
    """Audit rows whose event time is in [since, until): RFC 3339 instants with their offset
    (``2026-12-07T01:20:00-05:00`` and ``2026-12-07T06:20:00Z`` are the same instant); anything
    else is a 422 problem. ``user_id`` finds what the user did and, for anonymous failures
    (failed logins, lockouts), what was tried against their account."""
    return [AuditRowOut(**row) for row in audit_rows(principal, ledger, runner, query)]


@router.get(
    "/audit.csv",
    response_class=CsvResponse,
    responses=csv_content("the audit rows as CSV: a header row, then every field of each row"),
)
def report_csv(
    principal: AuditReader, ledger: LedgerDep, runner: RunnerDep, query: AuditQueryDep
) -> Response:
    """``GET /audit`` as CSV (the same query parameters, the same rows, every field). Cells a
    spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, a tab or a
    carriage return), and cells starting ``'``, get a leading ``'``; an empty cell is a null."""
    return csv_response(COLUMNS, audit_rows(principal, ledger, runner, query), "audit.csv")


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


@router.get(
    "/patients/{patient_id}/access-report.csv",
    response_class=CsvResponse,
    responses=csv_content("the access report as CSV: a header row, then every field"),
)
def access_report_csv(
    patient_id: UUID,
    principal: AuditReader,
    ledger: LedgerDep,
    runner: RunnerDep,
    purpose: Purpose = "HOPERAT",
) -> Response:
    """``GET /patients/{id}/access-report`` as CSV, guarded as ``GET /audit.csv`` is."""
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    rows = read_access_report(ledger, runner, reader, patient_id)
    return csv_response(ACCESS_COLUMNS, rows, f"access-report-{patient_id}.csv")
