"""The audit view: one row per event, with the fields of ASTM E2147-18.

E2147 asks of each audit record: the date and time of the event and of the activity, the
patient, the user, the action (create, change, void, query, access, print, copy, export,
disclose), the data category, the outcome and the source. The ledger's header supplies most of
them for every event, readable even after its payload was disposed of; reads (domain
``Access`` events) supply their own action, category, purpose and outcome. ONC 170.315(d)(3)
asks for a report over any period, sortable by every field: ``audit_report``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from domain.categories import RECORD_CATEGORIES
from events.db import Cursor, Database, Dialect
from projections.runner import Entry, Projection
from verify.canonical import format_timestamp
from verify.records import Header

# A batch's rows: audit_events rows, (patient, position) pairs, (user, patient) care pairs.
_Rows = tuple[list[tuple[Any, ...]], list[tuple[str, int]], set[tuple[str, str]]]
READ_ACTIONS = ("query", "access", "print", "copy", "export", "disclose")
COLUMNS = (
    "position",
    "event_time",
    "activity_time",
    "patient_id",
    "user_id",
    "action",
    "data_category",
    "outcome",
    "source",
    "purpose",
    "event_type",
)
# Where an event type does not say it itself, its module names the data category.
CATEGORIES = {
    **RECORD_CATEGORIES,
    "domain.practice": "practice",
    "domain.users": "users",
    "domain.credentials": "users",
    "domain.sessions": "users",
    "domain.emergency": "break-glass",
    "domain.access": "disclosures",
    "events.rotation": "ledger keys",
    "legal_hold.matters": "legal holds",
    "legal_hold.holds": "legal holds",
    "legal_hold.productions": "legal holds",
    "legal_hold.retention": "retention",
    "legal_hold.policies": "retention",
    "legal_hold.disposal_approvals": "retention",
    "legal_hold.refusals": "retention",
}
# Event names that record something refused or failed.
FAILED = {"Refused", "LoginFailed", "LockedOut"}
# Event names (the part after the last dot of the type) that withdraw what came before.
VOIDING = {"Cancelled", "EnteredInError", "Deactivated", "Stopped", "Inactivated", "RoleRevoked"}


class AuditView(Projection):
    name = "audit"
    # audit_care: each (user, patient) pair where the user created or changed something in
    # the patient's record outside break-glass, the care relationship a chart read checks; a
    # key lookup, however many reads the record has piled up.
    tables = ("audit_care", "audit_patients", "audit_events")

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        big = "INTEGER" if dialect == "sqlite" else "bigint"
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS audit_events ("
            f"position {big} PRIMARY KEY, event_time TEXT NOT NULL, activity_time TEXT NOT NULL, "
            "patient_id TEXT, user_id TEXT, action TEXT NOT NULL, data_category TEXT NOT NULL, "
            "outcome TEXT NOT NULL, source TEXT NOT NULL, purpose TEXT, event_type TEXT NOT NULL)"
        )
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS audit_patients (patient_id TEXT NOT NULL, "
            f"position {big} NOT NULL, PRIMARY KEY (patient_id, position))"
        )
        had_care = _table_exists(cursor, dialect, "audit_care")
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS audit_care (user_id TEXT NOT NULL, "
            "patient_id TEXT NOT NULL, PRIMARY KEY (user_id, patient_id))"
        )
        if not had_care:
            # A view built before this table existed: fill it from the rows already there,
            # by the same rule as gives_care (so a rebuild comes out the same).
            cursor.execute(
                "INSERT INTO audit_care (user_id, patient_id) "
                "SELECT DISTINCT a.user_id, p.patient_id FROM audit_events a "
                "JOIN audit_patients p ON p.position = a.position "
                "WHERE a.user_id IS NOT NULL AND a.action IN ('create', 'change') "
                "AND a.source NOT LIKE '%break-glass:%' "
                "AND a.event_type NOT LIKE 'domain.emergency:%' "
                "ON CONFLICT (user_id, patient_id) DO NOTHING"
            )

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        self.write(cursor, self.prepare(None, entries, 0))

    def prepare(self, db: Database | None, entries: Sequence[Entry], since: int) -> _Rows:
        rows, patients, care = [], [], set()
        for entry in entries:
            row = audit_row(entry)
            rows.append(row)
            of = patients_of(entry.header)
            patients.extend((p, entry.position) for p in of or payload_patients(entry))
            if of and gives_care(row):
                care.update((row[USER], p) for p in of)
        return rows, patients, care

    def write(self, cursor: Cursor, prepared: _Rows) -> None:
        rows, patients, care = prepared
        cursor.executemany(
            f"INSERT INTO audit_events ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})",
            rows,
        )
        if patients:
            cursor.executemany(
                "INSERT INTO audit_patients (patient_id, position) VALUES (?, ?)", patients
            )
        if care:
            cursor.executemany(
                "INSERT INTO audit_care (user_id, patient_id) VALUES (?, ?) "
                "ON CONFLICT (user_id, patient_id) DO NOTHING",
                sorted(care),
            )


def _table_exists(cursor: Cursor, dialect: Dialect, name: str) -> bool:
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    else:
        cursor.execute("SELECT to_regclass(?)", (name,))
        return cursor.fetchone()[0] is not None
    return cursor.fetchone() is not None


USER, ACTION, SOURCE, EVENT_TYPE = (
    COLUMNS.index(c) for c in ("user_id", "action", "source", "event_type")
)


def gives_care(row: tuple[Any, ...]) -> bool:
    """Whether the audited event shows its user caring for its patients: something created or
    changed in their record, not under break-glass (an emergency is no relationship)."""
    return (
        row[USER] is not None
        and row[ACTION] in ("create", "change")
        and "break-glass:" not in row[SOURCE]
        and not row[EVENT_TYPE].startswith("domain.emergency:")
    )


def patients_of(header: Header) -> list[str]:
    return [s.removeprefix("patient:") for s in header.subjects if s.startswith("patient:")]


def payload_patients(entry: Entry) -> list[str]:
    """The patient a legal-hold event is about, which it names in its payload and never as a
    subject (legal_hold/retention.py says why): the audit view shows it (a refused or done
    disposal names its target), but it makes no care relationship."""
    module = entry.header.type.partition(":")[0]
    found = getattr(entry.event, "patient_id", None) if module.startswith("legal_hold.") else None
    return [str(found)] if isinstance(found, UUID) else []


def audit_row(entry: Entry) -> tuple[Any, ...]:
    header, event = entry.header, entry.event
    module, _, qualname = header.type.partition(":")
    event_name = qualname.rpartition(".")[2]
    patients = patients_of(header) or payload_patients(entry)
    action = "void" if event_name in VOIDING else "create" if header.version == 1 else "change"
    category, purpose = CATEGORIES.get(module, "other"), None
    outcome = "failure" if event_name in FAILED else "success"
    if event is not None and module == "domain.access" and qualname.startswith("Access."):
        # A read: it says itself what was done, to which data, why, and how it ended.
        action = str(event.action)
        category = str(event.data_category)
        outcome = str(event.outcome)
        purpose = event.purpose_of_use
    elif event is not None and module == "domain.access" and qualname.startswith("Disclosure."):
        action, purpose = "disclose", event.purpose
    # The activity's own time: what the event says (a read, a check-in), else what its source
    # said, else when it was recorded.
    at = getattr(event, "at", None) if event is not None else None
    activity = format_timestamp(at) if isinstance(at, datetime) else header.original
    return (
        entry.position,
        header.recorded,
        activity or header.recorded,
        " ".join(patients) or None,
        header.actor.removeprefix("user:") if header.actor else None,
        action,
        category,
        outcome,
        header.session or "system",
        None if purpose is None else str(purpose),
        header.type,
    )


def audit_report(
    db: Database,
    since: str | None = None,
    until: str | None = None,
    *,
    sort_by: str = "event_time",
    descending: bool = False,
    patient_id: str | None = None,
    user_id: str | None = None,
    action: str | None = None,
) -> list[dict[str, Any]]:
    """Audit rows whose event time is in [since, until), sorted by any column, position last.

    Times are ledger timestamps (``2026-11-25T06:45:05.123456Z``), which sort as text.
    """
    if sort_by not in COLUMNS:
        raise ValueError(f"cannot sort by {sort_by!r}: choose one of {', '.join(COLUMNS)}")
    where, params = [], []
    if since is not None:
        where.append("a.event_time >= ?")
        params.append(since)
    if until is not None:
        where.append("a.event_time < ?")
        params.append(until)
    if user_id is not None:
        where.append("a.user_id = ?")
        params.append(user_id)
    if action is not None:
        where.append("a.action = ?")
        params.append(action)
    source = "audit_events a"
    if patient_id is not None:
        source += " JOIN audit_patients p ON p.position = a.position AND p.patient_id = ?"
        params.insert(0, patient_id)
    order = "DESC" if descending else "ASC"
    nulls = " NULLS FIRST" if not descending else " NULLS LAST"
    # Byte order on both stores: PostgreSQL would otherwise sort text by its locale.
    collate = ' COLLATE "C"' if db.dialect == "postgres" and sort_by != "position" else ""
    sql = (
        f"SELECT {', '.join('a.' + c for c in COLUMNS)} FROM {source}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY a.{sort_by}{collate} {order}{nulls}, a.position {order}"
    )
    with db.read() as c:
        c.execute(sql, params)
        return [dict(zip(COLUMNS, row, strict=True)) for row in c.fetchall()]
