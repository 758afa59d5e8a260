"""What a patient may ask for: who looked at my record, and to whom was it disclosed.

The access report (who, when, what, why) is read from the audit view, so every read that
reaches the audit view reaches the report too. The accounting of disclosures keeps the fields
HIPAA 164.528(b)(2) lists: the date, the recipient's name and (if known) address, a brief
description of what was disclosed, and a brief statement of the purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from events.db import Cursor, Database, Dialect
from projections.audit import READ_ACTIONS, patient_positions
from projections.runner import Entry, Projection
from verify.canonical import format_timestamp

ACCESS_COLUMNS = ("event_time", "user_id", "action", "data_category", "purpose", "outcome")
DISCLOSURE_COLUMNS = (
    "position",
    "patient_id",
    "disclosed_at",
    "recipient_name",
    "recipient_address",
    "description",
    "purpose",
    "disclosed_by",
)


def patient_access_report(
    db: Database, patient_id: str, since: str | None = None, until: str | None = None
) -> list[dict[str, Any]]:
    """Every read of the patient's record in [since, until), oldest first."""
    marks = ", ".join("?" * len(READ_ACTIONS))
    positions, named = patient_positions(patient_id)
    sql = (
        f"SELECT {', '.join('a.' + c for c in ACCESS_COLUMNS)} FROM audit_events a "
        f"JOIN {positions} p ON p.position = a.position WHERE a.action IN ({marks})"
    )
    params: list[Any] = [*named, *READ_ACTIONS]
    if since is not None:
        sql += " AND a.event_time >= ?"
        params.append(since)
    if until is not None:
        sql += " AND a.event_time < ?"
        params.append(until)
    with db.read() as c:
        c.execute(sql + " ORDER BY a.position", params)
        return [dict(zip(ACCESS_COLUMNS, row, strict=True)) for row in c.fetchall()]


class DisclosuresView(Projection):
    """The accounting of disclosures, from ``domain.access:Disclosure`` events."""

    name = "disclosures"
    tables = ("disclosures",)
    modules = frozenset({"domain.access"})

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        big = "INTEGER" if dialect == "sqlite" else "bigint"
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS disclosures (position {big} PRIMARY KEY, "
            "patient_id TEXT NOT NULL, disclosed_at TEXT NOT NULL, recipient_name TEXT NOT NULL, "
            "recipient_address TEXT, description TEXT NOT NULL, purpose TEXT NOT NULL, "
            "disclosed_by TEXT)"
        )

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        rows = [
            (
                e.position,
                str(e.event.patient_id),
                _text(e.event.disclosed_at),
                e.event.recipient_name,
                e.event.recipient_address,
                e.event.description,
                e.event.purpose,
                None if e.event.by is None else str(e.event.by),
            )
            for e in entries
            if e.event is not None and e.header.type.startswith("domain.access:Disclosure.")
        ]
        if rows:
            cursor.executemany(
                f"INSERT INTO disclosures ({', '.join(DISCLOSURE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(DISCLOSURE_COLUMNS))})",
                rows,
            )


def accounting_of_disclosures(
    db: Database, patient_id: str, since: str | None = None
) -> list[dict[str, Any]]:
    """The patient's disclosures (from ``since``, e.g. six years back), oldest first."""
    sql = f"SELECT {', '.join(DISCLOSURE_COLUMNS)} FROM disclosures WHERE patient_id = ?"
    params: list[Any] = [patient_id]
    if since is not None:
        sql += " AND disclosed_at >= ?"
        params.append(since)
    with db.read() as c:
        c.execute(sql + " ORDER BY disclosed_at, position", params)
        return [dict(zip(DISCLOSURE_COLUMNS, row, strict=True)) for row in c.fetchall()]


def _text(value: Any) -> str:
    return format_timestamp(value) if hasattr(value, "utcoffset") else str(value)
