"""The audit view: one row per event, with the fields of ASTM E2147-18.

E2147 asks of each audit record: the date and time of the event and of the activity, the
patient, the user, the action (create, change, void, query, access, print, copy, export,
disclose), the data category, the outcome and the source. The ledger's header supplies most of
them for every event, readable even after its payload was disposed of; reads (domain
``Access`` events) supply their own action, category, purpose and outcome. ONC 170.315(d)(3)
asks for a report over any period, sortable by every field: ``audit_report``.

Beyond E2147, each row names the users the event concerns other than its actor
(``target_user_id``: whose role was granted, whose account was reset) and, where the event says
more about what was asked, a ``detail``: for a refused administrative action, the action
attempted and what it asked for (the actor and target alone do not say that a user
administrator tried to make someone a risk manager); for a spent enrollment code, who issued it
(whoever spends a code is not known to be its user, so the event has no actor).
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

# A batch's rows: audit_events rows, and (patient, position) pairs.
_Rows = tuple[list[tuple[Any, ...]], list[tuple[str, int]]]
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
    "target_user_id",
    "detail",
    "reason",
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
    "domain.care_team": "care team",
    "events.rotation": "ledger keys",
    "legal_hold.matters": "legal holds",
    "legal_hold.holds": "legal holds",
    "legal_hold.productions": "legal holds",
    "legal_hold.retention": "retention",
    "legal_hold.policies": "retention",
    "legal_hold.disposal_approvals": "retention",
    "legal_hold.refusals": "retention",
    "domain.refusals": "access control",
    "domain.jobs": "jobs",
}
# Event names that record something refused or failed.
FAILED = {"Refused", "LoginFailed", "LockedOut", "RequestRefused"}
# Modules whose events name a patient in their payload, never as a subject.
PAYLOAD_PATIENT_MODULES = ("legal_hold.", "domain.refusals")
# Event names (the part after the last dot of the type) that withdraw what came before.
BY_PATIENT = "audit_events_by_patient"
BY_TIME = "audit_events_by_time"
# Each column as readers select it (alias a): activity_time is stored only where it differs.
SELECTED = {c: f"a.{c}" for c in COLUMNS} | {
    "activity_time": "COALESCE(a.activity_time, a.event_time)"
}
VOIDING = {"Cancelled", "EnteredInError", "Deactivated", "Stopped", "Inactivated", "RoleRevoked"}


class AuditView(Projection):
    name = "audit"
    tables = ("audit_patients", "audit_events")

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        big = "INTEGER" if dialect == "sqlite" else "bigint"
        if _table_exists(cursor, dialect, "audit_events") and not (
            _has_column(cursor, dialect, "audit_events", "reason")
            and _index_exists(cursor, dialect, BY_PATIENT)
        ):
            # Built before rows named their target, or before each row said why it failed and
            # anonymous failures were filed under the account they targeted, or when
            # audit_patients held every row's patient and activity_time was kept in every row
            # (see below): the view is disposable, so
            # it is dropped and replayed from the log (the new columns come from the events
            # themselves). The positions table exists whenever a view was built (the runner
            # makes it first).
            self.drop(cursor)
            cursor.execute(
                "UPDATE projection_positions SET position = 0 WHERE name = ?", (self.name,)
            )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS audit_events ("
            f"position {big} PRIMARY KEY, event_time TEXT NOT NULL, activity_time TEXT, "
            "patient_id TEXT, user_id TEXT, action TEXT NOT NULL, data_category TEXT NOT NULL, "
            "outcome TEXT NOT NULL, source TEXT NOT NULL, purpose TEXT, event_type TEXT NOT NULL, "
            "target_user_id TEXT, detail TEXT, reason TEXT)"
        )
        # A row's patient_id names its one patient, found through this index; only an event
        # concerning several patients (their ids joined by spaces there) has a row for each in
        # audit_patients. A row in audit_patients for every event as well took 3.8 MB of 9.5 on
        # PostgreSQL for a 20,000-result import (issue 17); this index takes a tenth of that
        # there, where it keeps each patient's positions once (B-tree deduplication).
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {BY_PATIENT} ON audit_events (patient_id)")
        # The audit view asks for a span of time (a day, a week): through this index the query
        # reads that span's rows, where it read the whole table (79 ms for a day of 1,000 rows
        # at 1M events on PostgreSQL, 6.8 at 10k: bench/scale.py). About 50 bytes a row on
        # either store. (A BRIN index on PostgreSQL would take a few kilobytes, but it only
        # knows the ranges vacuum has summarized: a table filled since, as a rebuild fills it,
        # was read whole until then.)
        cursor.execute(f"CREATE INDEX IF NOT EXISTS {BY_TIME} ON audit_events (event_time)")
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS audit_patients (patient_id TEXT NOT NULL, "
            f"position {big} NOT NULL, PRIMARY KEY (patient_id, position))"
        )
        # audit_care held (user, patient) pairs where the user had written to the record: a care
        # relationship anyone could give themselves. The care view (projections/care.py)
        # replaced it; a store built before still has the table, and nothing may read it.
        cursor.execute("DROP TABLE IF EXISTS audit_care")

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        self.write(cursor, self.prepare(None, entries, 0))

    def prepare(self, db: Database | None, entries: Sequence[Entry], since: int) -> _Rows:
        rows, patients = [], []
        for entry in entries:
            rows.append(audit_row(entry))
            of = patients_of(entry.header) or payload_patients(entry)
            if len(of) > 1:  # one patient is found by the row's own patient_id
                patients.extend((p, entry.position) for p in of)
        return rows, patients

    def write(self, cursor: Cursor, prepared: _Rows) -> None:
        rows, patients = prepared
        # activity_time is kept only where it differs from event_time (most events say nothing
        # of their own time): 28 bytes of a row's 258 on PostgreSQL. Readers see it whole
        # (SELECTED).
        cursor.executemany(
            f"INSERT INTO audit_events ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(COLUMNS))})",
            [(*r[:2], None if r[2] == r[1] else r[2], *r[3:]) for r in rows],
        )
        if patients:
            cursor.executemany(
                "INSERT INTO audit_patients (patient_id, position) VALUES (?, ?)", patients
            )


def _table_exists(cursor: Cursor, dialect: Dialect, name: str) -> bool:
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    else:
        cursor.execute("SELECT to_regclass(?)", (name,))
        return cursor.fetchone()[0] is not None
    return cursor.fetchone() is not None


def _index_exists(cursor: Cursor, dialect: Dialect, name: str) -> bool:
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?", (name,))
        return cursor.fetchone() is not None
    return _table_exists(cursor, dialect, name)  # to_regclass finds an index as well


def patient_positions(patient_id: str) -> tuple[str, list[str]]:
    """A subquery of the positions of every audit row naming ``patient_id``, and its
    parameters: rows of that patient alone (``patient_id``), and rows of several patients
    (``audit_patients``), which are never both."""
    sql = (
        "(SELECT position FROM audit_events WHERE patient_id = ? "
        "UNION ALL SELECT position FROM audit_patients WHERE patient_id = ?)"
    )
    return sql, [patient_id, patient_id]


def _has_column(cursor: Cursor, dialect: Dialect, table: str, column: str) -> bool:
    if dialect == "sqlite":
        cursor.execute(f"SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?", (column,))
    else:
        cursor.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ? AND column_name = ?",
            (table, column),
        )
    return cursor.fetchone() is not None


def patients_of(header: Header) -> list[str]:
    return [s.removeprefix("patient:") for s in header.subjects if s.startswith("patient:")]


def payload_patients(entry: Entry) -> list[str]:
    """The patient a legal-hold event or a role refusal is about, which it names in its payload
    and never as a subject (legal_hold/retention.py says why): the audit view shows it (a
    refused or done disposal names its target), but it makes no care relationship."""
    module = entry.header.type.partition(":")[0]
    named = module.startswith(PAYLOAD_PATIENT_MODULES)
    found = getattr(entry.event, "patient_id", None) if named else None
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
    elif event is not None and module == "domain.access" and qualname.startswith("Refusal."):
        # A refused attempt: what was attempted, on which data, why (a reason code), and on
        # which entry; it failed (FAILED).
        action, category = str(event.action), str(event.data_category)
    elif event is not None and module == "domain.access" and qualname.startswith("Disclosure."):
        action, purpose = "disclose", event.purpose
    elif event is not None and header.type == ROLE_REFUSED:
        # What the refused request would have done, by its method.
        action = METHOD_ACTIONS.get(str(event.route).partition(" ")[0], "access")
    elif header.type in (TOKEN_REFUSED, REQUEST_REFUSED):
        action = "access"  # a request refused at the door: it reached nothing
    # The activity's own time: what the event says (a read, a check-in), else what its source
    # said, else when it was recorded.
    at = getattr(event, "at", None) if event is not None else None
    activity = format_timestamp(at) if isinstance(at, datetime) else header.original
    actor = header.actor.removeprefix("user:") if header.actor else None
    target, detail = targets(header, actor), None
    if event is not None and header.type == REFUSED:
        target = None if event.target_id is None else str(event.target_id)
        asked = getattr(event, "detail", None)  # attempts recorded before it existed have none
        detail = str(event.action) if asked is None else f"{event.action}: {asked}"
    elif event is not None and module == "domain.access" and qualname.startswith("Refusal."):
        on = "" if event.target_id is None else f" on {event.target_id}"
        detail = f"{event.action} {event.data_category}{on}: {event.reason}"
    elif event is not None and header.type == ENROLLED:
        detail = f"enrollment code issued by user {event.issued_by}"
    elif event is not None and header.type == ROLE_REFUSED:
        detail = f"{event.route} needs the role {' or '.join(event.roles_required)}"
    elif event is not None and header.type == TOKEN_REFUSED:
        more = f"; {event.suppressed} more refused unrecorded" if event.suppressed else ""
        detail = f"from {event.address}{more}"
    reason = failure_reason(header.type, event_name, event) if outcome == "failure" else None
    if event is not None and header.type == SESSION_ENDED:
        reason = str(event.reason)  # logout, idle, expired, revoked
    # An anonymous attempt (a failed login, a lockout) is filed under the account it targeted,
    # so the victim's rows show the attack.
    user = actor if actor is not None or outcome != "failure" else target
    return (
        entry.position,
        header.recorded,
        activity or header.recorded,
        " ".join(patients) or None,
        user,
        action,
        category,
        outcome,
        header.session or "system",
        None if purpose is None else str(purpose),
        header.type,
        target,
        detail,
        reason,
    )


REFUSED = "domain.credentials:RefusedAttempt.Refused"
ENROLLED = "domain.credentials:Account.Enrolled"
ROLE_REFUSED = "domain.refusals:RoleRefusal.Refused"
TOKEN_REFUSED = "domain.refusals:TokenRefusal.Refused"
SESSION_ENDED = "domain.sessions:Session.Ended"
REQUEST_REFUSED = "domain.sessions:Session.RequestRefused"
METHOD_ACTIONS = {"GET": "access", "HEAD": "access", "POST": "create", "PUT": "change"}
METHOD_ACTIONS |= {"PATCH": "change", "DELETE": "void"}
LOCKED_OUT = "LockedOut"


def failure_reason(event_type: str, event_name: str, event: Any) -> str | None:
    """Why a failure failed, as its event says (a reason code, or the domain's words, which
    hold no PHI); a payload already disposed of says nothing."""
    if event_type == ROLE_REFUSED:
        return "role"
    if event_name == LOCKED_OUT:
        return "locked-out"
    found = getattr(event, "reason", None) if event is not None else None
    return str(found)[:500] if isinstance(found, str) else None


def targets(header: Header, actor: str | None) -> str | None:
    """The users an event concerns other than its actor (its ``user:`` subjects), or the actor
    when they are the only one (a login, one's own password change)."""
    users = [s.removeprefix("user:") for s in header.subjects if s.startswith("user:")]
    others = [u for u in users if u != actor]
    return " ".join(others or users) or None


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
        positions, named = patient_positions(patient_id)
        source += f" JOIN {positions} p ON p.position = a.position"
        params[:0] = named
    order = "DESC" if descending else "ASC"
    nulls = " NULLS FIRST" if not descending else " NULLS LAST"
    # Byte order on both stores: PostgreSQL would otherwise sort text by its locale.
    collate = ' COLLATE "C"' if db.dialect == "postgres" and sort_by != "position" else ""
    sql = (
        f"SELECT {', '.join(SELECTED[c] for c in COLUMNS)} FROM {source}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY {SELECTED[sort_by]}{collate} {order}{nulls}, a.position {order}"
    )
    with db.read() as c:
        c.execute(sql, params)
        return [dict(zip(COLUMNS, row, strict=True)) for row in c.fetchall()]
