"""The schedule: each provider's appointments by day, and any that overlap.

The domain refuses double booking (``domain.appointments.ProviderDay``), so ``conflicts`` is
empty for anything booked through it; the view still shows overlaps, because a schedule
imported from elsewhere, or a rule changed later, must not hide one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from events.db import Cursor, Database, Dialect
from projections.runner import Entry, Projection
from verify.canonical import format_timestamp

COLUMNS = (
    "appointment_id",
    "provider_id",
    "patient_id",
    "starts",
    "ends",
    "status",
    "reason",
    "booked_at",
    "changed_at",
)
ACTIVE = ("booked", "checked_in")
STATUS_AFTER = {
    "Booked": "booked",
    "Rescheduled": "booked",
    "Cancelled": "cancelled",
    "CheckedIn": "checked_in",
    "NoShowRecorded": "no_show",
}
APPOINTMENT = "domain.appointments:Appointment."


class ScheduleView(Projection):
    name = "schedule"
    tables = ("schedule",)
    modules = frozenset({APPOINTMENT.partition(":")[0]})

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS schedule (appointment_id TEXT PRIMARY KEY, "
            "provider_id TEXT NOT NULL, patient_id TEXT NOT NULL, starts TEXT NOT NULL, "
            "ends TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, booked_at TEXT NOT NULL, "
            "changed_at TEXT NOT NULL)"
        )
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS schedule_by_provider ON schedule (provider_id, starts)"
        )

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.event is None or not entry.header.type.startswith(APPOINTMENT):
                continue
            event, recorded = entry.event, entry.header.recorded
            name = entry.header.type.rpartition(".")[2]
            appointment_id = entry.header.stream
            if name == "Booked":
                cursor.execute(
                    f"INSERT INTO schedule ({', '.join(COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(COLUMNS))})",
                    (
                        appointment_id,
                        str(event.provider_id),
                        str(event.patient_id),
                        format_timestamp(event.start),
                        format_timestamp(event.end),
                        "booked",
                        event.reason,
                        recorded,
                        recorded,
                    ),
                )
            elif name == "Rescheduled":
                cursor.execute(
                    "UPDATE schedule SET starts = ?, ends = ?, status = ?, changed_at = ? "
                    "WHERE appointment_id = ?",
                    (
                        format_timestamp(event.start),
                        format_timestamp(event.end),
                        "booked",
                        recorded,
                        appointment_id,
                    ),
                )
            elif name in STATUS_AFTER:
                cursor.execute(
                    "UPDATE schedule SET status = ?, changed_at = ? WHERE appointment_id = ?",
                    (STATUS_AFTER[name], recorded, appointment_id),
                )


def _rows(db: Database, sql: str, params: Sequence[Any]) -> list[dict[str, Any]]:
    with db.read() as c:
        c.execute(sql, params)
        return [dict(zip(COLUMNS, row, strict=True)) for row in c.fetchall()]


def day_bounds(day: date) -> tuple[str, str]:
    """A UTC day as the half-open range of ledger timestamps it covers."""
    start = f"{day.isoformat()}T00:00:00.000000Z"
    return start, f"{(day + timedelta(days=1)).isoformat()}T00:00:00.000000Z"


def provider_day(db: Database, provider_id: str, day: date) -> list[dict[str, Any]]:
    """Every appointment of the provider that touches the UTC day, cancelled ones included."""
    start, end = day_bounds(day)
    return _rows(
        db,
        f"SELECT {', '.join(COLUMNS)} FROM schedule WHERE provider_id = ? "
        "AND starts < ? AND ends > ? ORDER BY starts, appointment_id",
        (provider_id, end, start),
    )


def conflicts(db: Database, provider_id: str | None = None) -> list[tuple[str, str]]:
    """Pairs of active appointments of one provider whose times overlap."""
    marks = ", ".join("?" * len(ACTIVE))
    sql = (
        "SELECT a.appointment_id, b.appointment_id FROM schedule a JOIN schedule b "
        "ON a.provider_id = b.provider_id AND a.appointment_id < b.appointment_id "
        "AND a.starts < b.ends AND b.starts < a.ends "
        f"WHERE a.status IN ({marks}) AND b.status IN ({marks})"
    )
    params: list[Any] = [*ACTIVE, *ACTIVE]
    if provider_id is not None:
        sql += " AND a.provider_id = ?"
        params.append(provider_id)
    with db.read() as c:
        c.execute(sql + " ORDER BY 1, 2", params)
        return [(a, b) for a, b in c.fetchall()]
