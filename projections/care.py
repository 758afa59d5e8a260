"""The care view: who someone else put in each patient's care, the relationship a chart read checks.

One row per source of a relationship, keyed by the aggregate it comes from:

- an appointment (``domain.appointments``): the provider, granted by whoever booked it, active
  until it is cancelled (checked in and no-show keep it: the patient was theirs that day);
- a care-team assignment (``domain.care_team:CareAssignment``): the clinician, granted by whoever
  last assigned them, active until ended;
- the registered provider (``domain.care_team:RegisteredProvider``): the provider named, granted
  by whoever named them, active until changed or cleared.

Who granted is the event header's actor (the server sets it from the session, never from the
request), so it is read from the ledger like everything else. A row counts (``has_care``) only
when its grantor is recorded and is not the clinician themselves: self-booking never counts,
before a cancellation or after. Rescheduling, checking in or no-show leave the grantor as it was.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.db import Cursor, Database, Dialect
from projections.runner import Entry, Projection

APPOINTMENT = "domain.appointments:Appointment."
ASSIGNMENT = "domain.care_team:CareAssignment."
PROVIDER = "domain.care_team:RegisteredProvider."

HAS_CARE = (
    "SELECT EXISTS (SELECT 1 FROM care_sources WHERE user_id = ? AND patient_id = ? "
    "AND active = 1 AND granted_by IS NOT NULL AND granted_by <> user_id)"
)


class CareView(Projection):
    name = "care"
    tables = ("care_sources",)
    modules = frozenset({"domain.appointments", "domain.care_team"})

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS care_sources (source_id TEXT PRIMARY KEY, "
            "kind TEXT NOT NULL, user_id TEXT NOT NULL, patient_id TEXT NOT NULL, granted_by TEXT, "
            "active INTEGER NOT NULL)"
        )
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS care_by_user ON care_sources (user_id, patient_id)"
        )

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        for entry in entries:
            kind, event = entry.header.type, entry.event
            if event is None:  # disposed of, or of no concern here
                continue
            name, source, actor = kind.rpartition(".")[2], entry.header.stream, actor_of(entry)
            if kind.startswith(APPOINTMENT) and name == "Booked":
                _begin(cursor, source, "appointment", event.provider_id, event.patient_id, actor)
            elif kind.startswith(ASSIGNMENT) and name == "Assigned":
                _begin(cursor, source, "care_team", event.user_id, event.patient_id, actor)
            elif kind.startswith(PROVIDER) and name == "Set":
                _begin(
                    cursor, source, "registered_provider", event.user_id, event.patient_id, actor
                )
            elif kind.startswith(ASSIGNMENT) and name == "AssignedAgain":
                cursor.execute(
                    "UPDATE care_sources SET active = 1, granted_by = ? WHERE source_id = ?",
                    (actor, source),
                )
            elif kind.startswith(PROVIDER) and name == "Changed":
                cursor.execute(
                    "UPDATE care_sources SET active = 1, user_id = ?, granted_by = ? "
                    "WHERE source_id = ?",
                    (str(event.user_id), actor, source),
                )
            elif (kind.startswith(APPOINTMENT) and name == "Cancelled") or (
                kind.startswith((ASSIGNMENT, PROVIDER)) and name in ("Ended", "Cleared")
            ):
                cursor.execute("UPDATE care_sources SET active = 0 WHERE source_id = ?", (source,))


def _begin(
    cursor: Cursor, source: str, kind: str, user: object, patient: object, actor: str | None
) -> None:
    cursor.execute(
        "INSERT INTO care_sources (source_id, kind, user_id, patient_id, granted_by, active) "
        "VALUES (?, ?, ?, ?, ?, 1)",
        (source, kind, str(user), str(patient), actor),
    )


def actor_of(entry: Entry) -> str | None:
    actor = entry.header.actor
    return actor.removeprefix("user:") if actor and actor.startswith("user:") else None


def has_care(db: Database, user_id: str, patient_id: str) -> bool:
    """Whether someone other than the user put them in the patient's care, and it holds now."""
    return bool(db.query(HAS_CARE, (user_id, patient_id))[0][0])
