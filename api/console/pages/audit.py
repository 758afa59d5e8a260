"""The audit view with filters (who, which patient, what kind of act, outcome, period) and its
CSV, and a patient's access report and its CSV, for auditors, risk managers and owners. The
API's functions read them (``api/routers/audit.py``), so each reading is recorded as the API's
is. The outcome filter is applied to the rows the API's query returns (it has no such
parameter); the CSV carries every field of the rows shown."""

from __future__ import annotations

from typing import Any, get_args
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Principal
from api.console.pages.emergency import patient_names, people
from api.console.web import (
    PREFIX,
    AuditPage,
    ConsoleRoute,
    NavItem,
    Problem,
    render,
    services_of,
)
from api.csv_export import csv_response
from api.instants import NotAnInstant, normalise_instant
from api.routers.audit import Action, AuditQuery, audit_rows
from domain.errors import InvalidEntry
from projections.access_report import ACCESS_COLUMNS
from projections.audit import COLUMNS
from projections.reads import Reader, read_access_report

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("Audit", PREFIX + "/audit", ("auditor", "risk_manager"))]
ACTIONS = get_args(Action)
OUTCOMES = ("success", "failure")
SHOWN = 500  # rows on the page; the CSV has them all


class Filters:
    """The audit page's query string, checked: a bad value becomes a problem, never a 500."""

    def __init__(self, params: Any) -> None:
        self.raw = {k: str(params.get(k, "")).strip() for k in FIELDS}
        self.problems: list[str] = []
        self.user_id = self._uuid("user_id", "user")
        self.patient_id = self._uuid("patient_id", "patient")
        self.action = self._choice("action", ACTIONS)
        self.outcome = self._choice("outcome", OUTCOMES)
        self.since = self._instant("since")
        self.until = self._instant("until")

    def _uuid(self, key: str, what: str) -> UUID | None:
        text = self.raw[key]
        if not text:
            return None
        try:
            return UUID(text)
        except ValueError:
            self.problems.append(f"the {what} is not a record id")
            return None

    def _choice(self, key: str, choices: tuple[str, ...]) -> str | None:
        text = self.raw[key]
        if text and text not in choices:
            self.problems.append(f"{key} must be one of {', '.join(choices)}")
        return text if text in choices else None

    def _instant(self, key: str) -> str | None:
        """A ``datetime-local`` value (minutes or seconds, no offset) is read as UTC, as the
        form says; a full RFC 3339 instant is taken as it is."""
        text = self.raw[key]
        if not text:
            return None
        if len(text) == 16:  # YYYY-MM-DDTHH:MM
            text += ":00"
        if len(text) == 19:
            text += "Z"
        try:
            return normalise_instant(text)
        except NotAnInstant:
            self.problems.append(f"{key} is not a date and time")
            return None

    def query(self) -> AuditQuery:
        return AuditQuery(
            self.since,
            self.until,
            "event_time",
            True,  # newest first
            self.patient_id,
            self.user_id,
            self.action,
            "HOPERAT",
        )

    def keep(self, row: dict[str, Any]) -> bool:
        return self.outcome is None or row["outcome"] == self.outcome


FIELDS = ("user_id", "patient_id", "action", "outcome", "since", "until", "show")


def _rows(principal: Principal, request: Request, filters: Filters) -> list[dict[str, Any]]:
    services = services_of(request)
    rows = audit_rows(principal, services.ledger, services.runner, filters.query())
    return [r for r in rows if filters.keep(r)]


@router.get("/audit")
def audit_page(request: Request, principal: AuditPage) -> Response:
    filters = Filters(request.query_params)
    ledger = services_of(request).ledger
    names = people(ledger)
    problem = None
    rows: list[dict[str, Any]] | None = None
    if filters.problems:
        problem = Problem(422, "Some filters are invalid", "; ".join(filters.problems) + ".")
    elif filters.raw["show"]:
        rows = _rows(principal, request, filters)
    patients = {}
    if rows:
        ids = {UUID(r["patient_id"]) for r in rows[:SHOWN] if r["patient_id"]}
        patients = {str(k): v for k, v in patient_names(ledger, ids).items()}
    query = "&".join(f"{k}={v}" for k, v in filters.raw.items() if v and k != "show")
    return render(
        request,
        "audit/index.html",
        status_code=200 if problem is None else problem.status,
        title="Audit",
        filters=filters.raw,
        users=sorted(names.items(), key=lambda item: item[1]),
        names={str(k): v for k, v in names.items()},
        patients=patients,
        actions=ACTIONS,
        outcomes=OUTCOMES,
        rows=None if rows is None else rows[:SHOWN],
        total=0 if rows is None else len(rows),
        shown=SHOWN,
        csv_query=query,
        problem=problem,
    )


@router.get("/audit.csv")
def audit_csv(request: Request, principal: AuditPage) -> Response:
    filters = Filters(request.query_params)
    if filters.problems:
        raise InvalidEntry("; ".join(filters.problems))
    return csv_response(COLUMNS, _rows(principal, request, filters), "audit.csv")


def _access(request: Request, principal: Principal, patient_id: UUID) -> list[dict[str, Any]]:
    services = services_of(request)
    reader = Reader(principal.user_id, "HOPERAT", str(principal.session_id))
    return read_access_report(services.ledger, services.runner, reader, patient_id)


@router.get("/patients/{patient_id}/access-report")
def access_report_page(request: Request, patient_id: UUID, principal: AuditPage) -> Response:
    ledger = services_of(request).ledger
    name = patient_names(ledger, {patient_id})[patient_id]  # a missing patient: 404 page
    rows = _access(request, principal, patient_id)
    return render(
        request,
        "audit/access_report.html",
        title="Access report",
        patient_id=patient_id,
        patient=name,
        rows=rows,
        names={str(k): v for k, v in people(ledger).items()},
    )


@router.get("/patients/{patient_id}/access-report.csv")
def access_report_csv(request: Request, patient_id: UUID, principal: AuditPage) -> Response:
    rows = _access(request, principal, patient_id)
    return csv_response(ACCESS_COLUMNS, rows, f"access-report-{patient_id}.csv")
