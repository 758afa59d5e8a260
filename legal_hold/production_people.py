"""Who is who in a production: the names a reader sees instead of ledger ids.

Users (clinicians, custodians, senders) are named from the ledger's own ``User.Registered``
events up to the production's checkpoint; staff names are no patient's health information.
Patients are named only from their own produced records (their ``Patient.Registered`` and
``DemographicsChanged`` events in the bundle), so a patient outside the scope is never named:
they stay "a patient outside this production".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from events.ledger import Ledger
from verify.bundle_format import PRODUCED, EventRecord
from verify.records import Header

USER, PATIENT = "user:", "patient:"
USER_REGISTERED = "domain.users:User.Registered"
PATIENT_REGISTERED = "domain.patients:Patient.Registered"
PATIENT_CHANGED = "domain.patients:Patient.DemographicsChanged"
PATIENT_IDENTIFIER = "domain.patients:Patient.IdentifierAdded"
OUTSIDE = "a patient outside this production"


@dataclass
class Patient:
    """A produced patient's demographics as of the production (latest change wins)."""

    subject: str
    given_name: str = ""
    family_name: str = ""
    mrn: str = ""
    birth_date: str = ""
    sex: str = ""
    identifiers: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given_name, self.family_name) if p)


@dataclass
class People:
    users: dict[str, str] = field(default_factory=dict)  # user:<id> -> name
    patients: dict[str, Patient] = field(default_factory=dict)  # patient:<id> -> produced

    def name(self, subject: str | None) -> str:
        """A subject as a reader should see it: a name if known and allowed, never only an id
        of someone who is produced."""
        if not subject:
            return ""
        if subject in self.users:
            return self.users[subject]
        patient = self.patients.get(subject)
        if patient is not None and patient.name:
            return patient.name
        if subject.startswith(PATIENT):
            return OUTSIDE
        if subject.startswith(USER):
            return f"user {subject.removeprefix(USER)[:8]}"
        return subject

    def of_id(self, value: Any, kind: str) -> str:
        """A uuid field of a payload (``kind`` "user" or "patient") as a name."""
        return self.name(f"{kind}:{plain(value)}") if value else ""


def plain(value: Any) -> Any:
    """A payload value without the transcoder's type wrapper ({"_type_", "_data_"})."""
    if type(value) is dict and set(value) == {"_data_", "_type_"}:
        return plain(value["_data_"])
    return value


def user_names(ledger: Ledger, size: int) -> dict[str, str]:
    """user:<id> -> name, for every user registered below log position ``size``."""
    with ledger.db.read() as c:
        c.execute(
            "SELECT originator_id FROM stored_events WHERE topic = ? AND position < ?",
            (USER_REGISTERED, size),
        )
        ids = [UUID(str(row[0])) for row in c.fetchall()]
    names = {}
    for user_id in ids:
        user = ledger.repository.get(user_id)
        names[f"{USER}{user_id}"] = str(user.name)
    return names


def people(
    records: Sequence[EventRecord],
    headers: dict[int, Header],
    payloads: dict[int, Any],
    users: dict[str, str],
) -> People:
    """The directory for one production: ``users`` and every patient produced."""
    found = People(users=dict(users))
    for record in records:
        header = headers[record.position]
        if record.status != PRODUCED or not header.type.startswith("domain.patients:"):
            continue
        payload = payloads.get(record.position)
        if type(payload) is not dict or not header.subjects:
            continue
        subject = header.subjects[0]
        patient = found.patients.setdefault(subject, Patient(subject))
        if header.type == PATIENT_REGISTERED:
            _apply(patient, payload)
            for item in payload.get("identifiers") or []:
                patient.identifiers.append(_identifier(item))
        elif header.type == PATIENT_CHANGED:
            _apply(patient, plain(payload.get("changes")) or {})
        elif header.type == PATIENT_IDENTIFIER:
            patient.identifiers.append(_identifier(payload))
    return found


def _apply(patient: Patient, values: dict[str, Any]) -> None:
    for name in ("given_name", "family_name", "mrn", "birth_date", "sex"):
        if name in values:
            setattr(patient, name, str(plain(values[name])))


def _identifier(item: Any) -> str:
    item = plain(item)
    if type(item) is not dict:
        return str(item)
    return f"{item.get('value', '')} ({item.get('system', '')})"
