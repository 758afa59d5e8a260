"""The care view: who someone else put in each patient's care, the relationship a chart read checks.

One row per source of a relationship, keyed by the aggregate it comes from:

- an appointment (``domain.appointments``): the provider, granted by whoever booked it if they
  were staff or an owner then (a clinician booking a colleague arranges no care: the front desk
  and the owners keep the schedule), active until it is cancelled (checked in and no-show keep
  it: the patient was theirs that day);
- a care-team assignment (``domain.care_team:CareAssignment``): the clinician, granted by whoever
  last assigned them, active until ended;
- the registered provider (``domain.care_team:RegisteredProvider``): the provider named, granted
  by whoever named them, active until changed or cleared.

Who granted is the event header's actor (the server sets it from the session, never from the
request), so it is read from the ledger like everything else. A row counts (``has_care``) only
when its grantor is recorded and is not the clinician themselves: self-booking never counts,
before a cancellation or after. Rescheduling, checking in or no-show leave the grantor as it was.

Nor does a grant count between two accounts one person may hold. Whoever issued an account's
enrollment code could have spent it themselves, so a user administrator who creates a clinician
(or resets one) and then books them, or books them through a staff account they also created,
would open charts as a clinician through an identity of their own. The view keeps who issued
each account's codes (``care_issuers``, from ``Account.EnrollmentCodeIssued``), and a grant does
not count when its grantor issued the clinician's code, the clinician issued the grantor's, or
one non-owner issued both. Codes an owner issued are not kept: an owner opens every chart already,
so a second account of theirs gains nothing. Who holds which role is followed from the users'
own events (``care_roles``), as the log stood when the code was issued or the visit booked.
"""

from __future__ import annotations

from collections.abc import Sequence

from events.db import Cursor, Database, Dialect
from projections.runner import Entry, Projection

APPOINTMENT = "domain.appointments:Appointment."
ASSIGNMENT = "domain.care_team:CareAssignment."
PROVIDER = "domain.care_team:RegisteredProvider."

USERS = "domain.users:User."
CODE_ISSUED = "domain.credentials:Account.EnrollmentCodeIssued"

HAS_CARE = (
    "SELECT EXISTS (SELECT 1 FROM care_sources s WHERE s.user_id = ? AND s.patient_id = ? "
    "AND s.active = 1 AND s.entitled = 1 AND s.granted_by IS NOT NULL "
    "AND s.granted_by <> s.user_id "
    "AND NOT EXISTS (SELECT 1 FROM care_issuers i WHERE i.user_id = s.user_id "
    "AND i.issuer_id = s.granted_by) "
    "AND NOT EXISTS (SELECT 1 FROM care_issuers i WHERE i.user_id = s.granted_by "
    "AND i.issuer_id = s.user_id) "
    "AND NOT EXISTS (SELECT 1 FROM care_issuers a JOIN care_issuers b "
    "ON b.issuer_id = a.issuer_id WHERE a.user_id = s.user_id AND b.user_id = s.granted_by))"
)


class CareView(Projection):
    name = "care"
    tables = ("care_sources", "care_issuers", "care_roles")
    modules = frozenset(
        {"domain.appointments", "domain.care_team", "domain.users", "domain.credentials"}
    )

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        if _table_exists(cursor, dialect, "care_sources") and not _table_exists(
            cursor, dialect, "care_roles"
        ):
            # Built before it followed roles and who issued codes: dropped and replayed.
            self.drop(cursor)
            cursor.execute(
                "UPDATE projection_positions SET position = 0 WHERE name = ?", (self.name,)
            )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS care_issuers (user_id TEXT NOT NULL, "
            "issuer_id TEXT NOT NULL, PRIMARY KEY (user_id, issuer_id))"
        )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS care_roles (user_id TEXT NOT NULL, role TEXT NOT NULL, "
            "PRIMARY KEY (user_id, role))"
        )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS care_sources (source_id TEXT PRIMARY KEY, "
            "kind TEXT NOT NULL, user_id TEXT NOT NULL, patient_id TEXT NOT NULL, granted_by TEXT, "
            "entitled INTEGER NOT NULL, active INTEGER NOT NULL)"
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
            if kind.startswith(USERS):
                _follow_roles(cursor, source, name, event)
            elif kind == CODE_ISSUED:
                _issued(cursor, entry, str(event.issued_by))
            elif kind.startswith(APPOINTMENT) and name == "Booked":
                entitled = _holds(cursor, actor, ("staff", "owner"))
                _begin(
                    cursor,
                    source,
                    "appointment",
                    event.provider_id,
                    event.patient_id,
                    actor,
                    entitled=entitled,
                )
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
    cursor: Cursor,
    source: str,
    kind: str,
    user: object,
    patient: object,
    actor: str | None,
    *,
    entitled: bool = True,
) -> None:
    """A way into care. Care-team assignments and registered providers are made only through
    routes for owners and staff; a booking is ``entitled`` when its booker was one of them."""
    cursor.execute(
        "INSERT INTO care_sources "
        "(source_id, kind, user_id, patient_id, granted_by, entitled, active) "
        "VALUES (?, ?, ?, ?, ?, ?, 1)",
        (source, kind, str(user), str(patient), actor, int(entitled)),
    )


def _follow_roles(cursor: Cursor, user: str, name: str, event: object) -> None:
    role = getattr(event, "role", None)
    if name in ("Registered", "RoleGranted") and role is not None:
        cursor.execute(
            "INSERT INTO care_roles (user_id, role) VALUES (?, ?) "
            "ON CONFLICT (user_id, role) DO NOTHING",
            (user, str(role)),
        )
    elif name == "RoleRevoked":
        cursor.execute("DELETE FROM care_roles WHERE user_id = ? AND role = ?", (user, str(role)))
    elif name == "Deactivated":
        cursor.execute("DELETE FROM care_roles WHERE user_id = ?", (user,))


def _holds(cursor: Cursor, user: str | None, roles: tuple[str, ...]) -> bool:
    """Whether ``user`` holds one of ``roles`` as the log stands at this event."""
    if user is None:
        return False
    marks = ", ".join("?" * len(roles))
    cursor.execute(
        f"SELECT 1 FROM care_roles WHERE user_id = ? AND role IN ({marks})", (user, *roles)
    )
    return cursor.fetchone() is not None


def _issued(cursor: Cursor, entry: Entry, issuer: str) -> None:
    """Keep who issued this account's code, unless they were an owner then."""
    if _holds(cursor, issuer, ("owner",)):
        return
    for subject in entry.header.subjects:
        if subject.startswith("user:"):
            cursor.execute(
                "INSERT INTO care_issuers (user_id, issuer_id) VALUES (?, ?) "
                "ON CONFLICT (user_id, issuer_id) DO NOTHING",
                (subject.removeprefix("user:"), issuer),
            )


def _table_exists(cursor: Cursor, dialect: Dialect, name: str) -> bool:
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        return cursor.fetchone() is not None
    cursor.execute("SELECT to_regclass(?)", (name,))
    return cursor.fetchone()[0] is not None


def actor_of(entry: Entry) -> str | None:
    actor = entry.header.actor
    return actor.removeprefix("user:") if actor and actor.startswith("user:") else None


def has_care(db: Database, user_id: str, patient_id: str) -> bool:
    """Whether someone other than the user put them in the patient's care, and it holds now."""
    return bool(db.query(HAS_CARE, (user_id, patient_id))[0][0])
