"""Who may open which chart: the care relationship, and break-glass for everyone else.

- An **owner** may open every chart (the practice's owners answer for all of it).
- A **clinician** may open the charts of patients they have a care relationship with: the
  patient is booked with them (an appointment in the schedule, in any state), or they have
  written to the patient's record (registered the patient, recorded a lab, drafted a note, ...:
  any create or change event they made on it, outside break-glass).
- For any other patient a clinician declares an emergency (``POST /patients/{id}/break-glass``)
  with a reason. The access lasts a limited time; every read under it is recorded with purpose
  of use ``ETREAT``, and every event under it (reads and writes) carries the session as
  ``<session id> break-glass:<emergency access id>`` in its header, so the audit view's
  ``source`` column flags it. The owners are alerted and the access waits in the review queue.
- Staff, auditors and risk managers never open charts (their roles do not allow it), so they
  cannot break the glass either.

The relationship is read from the schedule and audit views (caught up first if they do not show
it yet), so it is derived from the ledger like everything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from api.auth import Principal, load, now
from api.errors import BreakGlassRequired
from domain.base import user_subject
from domain.patients import Patient
from events.context import acting
from events.ledger import Ledger
from projections.reads import Reader
from projections.runner import Runner

T = TypeVar("T")

EMERGENCY_PURPOSE = "ETREAT"


@dataclass(frozen=True)
class ChartAccess:
    """How the principal reaches one patient's chart: by relationship, or under break-glass."""

    principal: Principal
    patient_id: UUID
    emergency_access_id: UUID | None = None

    @property
    def session(self) -> str:
        if self.emergency_access_id is None:
            return str(self.principal.session_id)
        return f"{self.principal.session_id} break-glass:{self.emergency_access_id}"

    def reader(self, purpose: str) -> Reader:
        if self.emergency_access_id is not None:
            purpose = EMERGENCY_PURPOSE
        return Reader(self.principal.user_id, purpose, self.session)

    @contextmanager
    def acting(self) -> Iterator[None]:
        with acting(user_subject(self.principal.user_id), self.session):
            yield


def has_care_relationship(ledger: Ledger, user_id: UUID, patient_id: UUID) -> bool:
    user, patient = str(user_id), str(patient_id)
    rows = ledger.db.query(
        "SELECT EXISTS (SELECT 1 FROM schedule WHERE provider_id = ? AND patient_id = ?) "
        "OR EXISTS (SELECT 1 FROM audit_care WHERE user_id = ? AND patient_id = ?)",
        (user, patient, user, patient),
    )
    return bool(rows[0][0])


def patient_exists(ledger: Ledger, patient_id: UUID) -> bool:
    try:
        return isinstance(ledger.repository.get(patient_id), Patient)
    except AggregateNotFoundError:
        return False


def chart_access(
    ledger: Ledger, runner: Runner, principal: Principal, patient_id: UUID
) -> ChartAccess:
    """The principal's way to the patient's chart, or ``BreakGlassRequired`` (403).

    An unknown patient passes here: the route answers 404 for it (and records a failed read).
    """
    if "owner" in principal.roles:
        return ChartAccess(principal, patient_id)
    emergency = principal.emergency_access(patient_id, now())
    if emergency is not None:
        return ChartAccess(principal, patient_id, emergency)
    if has_care_relationship(ledger, principal.user_id, patient_id):
        return ChartAccess(principal, patient_id)
    runner.catch_up_to()
    if has_care_relationship(ledger, principal.user_id, patient_id):
        return ChartAccess(principal, patient_id)
    if not patient_exists(ledger, patient_id):
        return ChartAccess(principal, patient_id)
    raise BreakGlassRequired(
        f"no care relationship with patient {patient_id}: declare an emergency "
        "(POST /patients/{patient_id}/break-glass) to open this chart"
    )


def add_to_chart(
    ledger: Ledger, runner: Runner, principal: Principal, patient_id: UUID, make: Callable[[], T]
) -> T:
    """A new entry in the patient's chart: the principal's way to it is checked, the patient
    must exist, and the entry is saved as that access (flagged if under break-glass)."""
    access = chart_access(ledger, runner, principal, patient_id)
    load(ledger, patient_id, Patient)
    entry = make()
    with access.acting():
        ledger.save(entry)
    return entry


def change_in_chart(
    ledger: Ledger,
    runner: Runner,
    principal: Principal,
    entry_id: UUID,
    kind: type[T],
    change: Callable[[T], object],
) -> T:
    """An existing chart entry, changed and saved as the principal's access to its patient."""
    entry = load(ledger, entry_id, kind)
    access = chart_access(ledger, runner, principal, entry.patient_id)  # type: ignore[attr-defined]
    change(entry)
    with access.acting():
        ledger.save(entry)
    return entry
