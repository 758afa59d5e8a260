"""Who may open which chart: a care relationship someone else gave, or break-glass.

- An **owner** may open every chart (the practice's owners answer for all of it).
- A **clinician** may open a patient's chart when **someone other than themselves** put them in
  the patient's care (``projections/care.py`` reads it from the ledger):
  - an appointment with them that the front desk or an owner booked, until it is cancelled: a
    cancelled appointment no longer counts, a checked-in or no-show one still does (the patient
    was theirs that day); one a clinician booked, of themselves or a colleague, never counts;
  - a care-team assignment by someone else (``POST /patients/{id}/care-team``, owners and
    staff), until it is ended (``DELETE /patients/{id}/care-team/{user_id}``);
  - being the patient's registered provider, named by someone else
    (``PUT /patients/{id}/registered-provider``), until changed or cleared.
  Nothing a clinician does alone makes a relationship: booking themselves, starting, joining or
  posting to a thread, ingesting or importing a message, registering a patient (a duplicate of an
  existing one included) or writing to a record, under break-glass or not.
- For any other patient a clinician declares an emergency (``POST /patients/{id}/break-glass``)
  with a reason. The access lasts a limited time; every read under it is recorded with purpose
  of use ``ETREAT``, and every event under it (reads and writes) carries the session as
  ``<session id> break-glass:<emergency access id>`` in its header, so the audit view's
  ``source`` column flags it. The owners are alerted and the access waits in the review queue.
- Staff, auditors and risk managers never open charts (their roles do not allow it), so they
  cannot break the glass either, nor read a thread about a patient.

Each refusal here (``break-glass-required``, or a thread read by someone who opens no charts)
writes one ``Refusal`` event (``domain/access.py``) naming the user, the patient, the action,
the entry attempted (a thread, a note) and the reason, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from api.auth import Principal, load, now
from api.errors import BreakGlassRequired, Forbidden
from domain.access import Refusal
from domain.base import user_subject
from domain.patients import Patient
from events.context import acting
from events.ledger import Ledger
from projections.care import HAS_CARE, CareView, has_care
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
    """As the care view stands now (the caller catches it up, or reads through ``chart_access``)."""
    return has_care(ledger.db, str(user_id), str(patient_id))


def patient_exists(ledger: Ledger, patient_id: UUID) -> bool:
    try:
        return isinstance(ledger.repository.get(patient_id), Patient)
    except AggregateNotFoundError:
        return False


def refuse(
    ledger: Ledger,
    principal: Principal,
    patient_id: UUID,
    *,
    action: str,
    category: str,
    reason: str,
    target_id: UUID | None = None,
) -> None:
    """Record the principal's refused attempt on the patient's record (and only that)."""
    refusal = Refusal.record(
        user_id=principal.user_id,
        patient_id=patient_id,
        action=action,
        data_category=category,
        reason=reason,
        at=now(),
        target_id=target_id,
    )
    with principal.acting():
        ledger.save(refusal)


def chart_access(
    ledger: Ledger,
    runner: Runner,
    principal: Principal,
    patient_id: UUID,
    *,
    action: str = "access",
    category: str = "chart",
    target_id: UUID | None = None,
) -> ChartAccess:
    """The principal's way to the patient's chart, or ``BreakGlassRequired`` (403), recorded as
    a refused ``action`` on the patient's ``category`` (of entry ``target_id``, if given).

    An unknown patient passes here: the route answers 404 for it (and records a failed read).
    """
    if "owner" in principal.roles:
        return ChartAccess(principal, patient_id)
    clinician = "clinician" in principal.roles
    if clinician:
        emergency = principal.emergency_access(patient_id, now())
        if emergency is not None:
            return ChartAccess(principal, patient_id, emergency)
        params = (str(principal.user_id), str(patient_id))
        if runner.read_for(CareView.name, HAS_CARE, params)[0][0]:
            return ChartAccess(principal, patient_id)
    if not patient_exists(ledger, patient_id):
        return ChartAccess(principal, patient_id)
    reason = "break-glass-required" if clinician else "no-chart-role"
    refuse(
        ledger,
        principal,
        patient_id,
        action=action,
        category=category,
        reason=reason,
        target_id=target_id,
    )
    if not clinician:
        raise Forbidden(f"patient {patient_id}'s record is open to clinicians and owners only")
    raise BreakGlassRequired(
        f"no care relationship with patient {patient_id}: declare an emergency "
        "(POST /patients/{patient_id}/break-glass) to open this chart"
    )


def add_to_chart(
    ledger: Ledger,
    runner: Runner,
    principal: Principal,
    patient_id: UUID,
    make: Callable[[], T],
    category: str = "chart",
) -> T:
    """A new entry in the patient's chart: the principal's way to it is checked, the patient
    must exist, and the entry is saved as that access (flagged if under break-glass)."""
    access = chart_access(ledger, runner, principal, patient_id, action="create", category=category)
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
    category: str = "chart",
) -> T:
    """An existing chart entry, changed and saved as the principal's access to its patient."""
    entry = load(ledger, entry_id, kind)
    patient_id = entry.patient_id  # type: ignore[attr-defined]
    access = chart_access(
        ledger,
        runner,
        principal,
        patient_id,
        action="change",
        category=category,
        target_id=entry_id,
    )
    change(entry)
    with access.acting():
        ledger.save(entry)
    return entry


def thread_access(
    ledger: Ledger,
    runner: Runner,
    principal: Principal,
    patient_ids: Sequence[UUID],
    thread_id: UUID,
    action: str,
) -> list[ChartAccess]:
    """The principal's way to every patient a thread concerns: a thread shows what it says of
    each of them, so reading or adding to it needs each chart (an owner's, a relationship
    someone else gave, or break-glass). The first patient closed to them is refused (403),
    recorded once, naming the thread."""
    return [
        chart_access(
            ledger,
            runner,
            principal,
            patient_id,
            action=action,
            category="messages",
            target_id=thread_id,
        )
        for patient_id in patient_ids
    ]
