"""Reading PHI is itself recorded (DESIGN.md rule 6): every function here first appends an
``Access`` event (who, when, what data, why, and whether it worked), then answers.

The access event is saved before the answer is returned, so no read escapes the audit view and
the patient's access report; a read that fails (no such patient) is recorded as a failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.access import Access
from domain.base import user_subject
from events.context import acting
from events.ledger import Ledger
from projections.access_report import accounting_of_disclosures, patient_access_report
from projections.chart import CHART, ChartEntry, as_of, chart, chart_entries
from projections.runner import Runner
from verify.canonical import format_timestamp


class PatientNotFound(LookupError):
    """No chart for that patient id (the failed read is recorded all the same)."""


@dataclass(frozen=True)
class Reader:
    """Who is reading, in which session, and why (an HL7 PurposeOfUse code)."""

    user_id: UUID
    purpose_of_use: str
    session: str | None = None


def _record(
    ledger: Ledger,
    reader: Reader,
    action: str,
    category: str,
    patient_ids: list[UUID | None],
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> None:
    now = datetime.now(UTC)
    accesses = [
        Access.record(
            user_id=reader.user_id,
            patient_id=patient_id,
            action=action,
            data_category=category,
            purpose_of_use=reader.purpose_of_use,
            outcome=outcome,
            at=now,
            detail=detail,
        )
        for patient_id in patient_ids
    ]
    with acting(user_subject(reader.user_id), reader.session):
        # Concurrent reads share the append (one commit for all): the access is still
        # committed before this read answers.
        ledger.save_together(*accesses)


def _chart_read(action: str) -> Callable[[Ledger, Runner, Reader, UUID], list[ChartEntry]]:
    def read(ledger: Ledger, runner: Runner, reader: Reader, patient_id: UUID) -> list[ChartEntry]:
        entries = chart_entries(runner.read_for("chart", CHART, (str(patient_id),)))
        if not entries:
            _record(ledger, reader, action, "chart", [patient_id], outcome="failure")
            raise PatientNotFound(f"no chart for patient {patient_id}")
        _record(ledger, reader, action, "chart", [patient_id])
        return entries

    read.__name__ = f"{action}_chart"
    read.__doc__ = f"The patient's current chart, recorded as a {action!r} of it."
    return read


open_chart = _chart_read("access")
print_chart = _chart_read("print")
copy_chart = _chart_read("copy")
export_chart = _chart_read("export")


def open_chart_as_of(
    ledger: Ledger, reader: Reader, patient_id: UUID, moment: datetime
) -> list[ChartEntry]:
    """The chart as it stood at ``moment``, recorded as an access naming that moment."""
    when = format_timestamp(moment)
    entries = as_of(ledger, patient_id, when)
    outcome = "success" if entries else "failure"
    _record(ledger, reader, "access", "chart", [patient_id], outcome, {"as_of": when})
    if not entries:
        raise PatientNotFound(f"no chart for patient {patient_id} at {when}")
    return entries


def search_patients(ledger: Ledger, runner: Runner, reader: Reader, text: str) -> list[ChartEntry]:
    """Patients whose MRN, given or family name contains ``text`` (case-insensitive).

    One query event per patient shown, so each one's access report lists the search; a search
    that finds nobody is recorded without a patient.
    """
    runner.catch_up_to()
    wanted = text.casefold()
    with ledger.db.read() as c:
        c.execute("SELECT patient_id FROM chart_entries WHERE kind = 'Patient'")
        ids = [UUID(row[0]) for row in c.fetchall()]
    found = [
        entry
        for patient_id in ids
        for entry in chart(ledger.db, patient_id)
        if entry.kind == "Patient"
        and any(
            wanted in str(entry.state.get(field, "")).casefold()
            for field in ("mrn", "given_name", "family_name")
        )
    ]
    shown: list[UUID | None] = [e.entry_id for e in found] or [None]
    _record(ledger, reader, "query", "demographics", shown, detail={"query": text})
    return found


def read_access_report(
    ledger: Ledger, runner: Runner, reader: Reader, patient_id: UUID
) -> list[dict[str, Any]]:
    """Who read the patient's record; reading it is recorded too (category ``audit``)."""
    _record(ledger, reader, "access", "audit", [patient_id])
    runner.catch_up_to()
    return patient_access_report(ledger.reports_db("audit"), str(patient_id))


def read_disclosures(
    ledger: Ledger, runner: Runner, reader: Reader, patient_id: UUID
) -> list[dict[str, Any]]:
    """The patient's accounting of disclosures; reading it is recorded too."""
    _record(ledger, reader, "access", "audit", [patient_id])
    runner.catch_up_to()
    return accounting_of_disclosures(ledger.reports_db("disclosures"), str(patient_id))


def record_access(
    ledger: Ledger,
    reader: Reader,
    action: str,
    category: str,
    patient_ids: list[UUID | None],
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> None:
    """Record a read that is not of the chart (a document, a thread, a schedule) before it is
    answered: one access event per patient shown (or one without a patient)."""
    _record(ledger, reader, action, category, patient_ids, outcome, detail)
