"""Who someone else put in a patient's care: care-team assignments and the registered provider.

A clinician opens a patient's chart without break-glass only when someone other than themselves
put them in the patient's care (``api/care.py``). Two of the ways are recorded here:

- a ``CareAssignment`` (one per patient and clinician, with a deterministic id): assigned, ended,
  assigned again, each time by someone who is not the clinician;
- a ``RegisteredProvider`` (one per patient, deterministic id): the patient's registered provider,
  set, changed or cleared by someone who is not the provider named.

The third, an appointment booked by someone else, is the schedule's (``domain/appointments.py``).
Nobody can assign themselves: the commands refuse ``by == user_id`` (``NotPermitted``), and the
care view reads who acted from each event's header, never from its payload.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import identifier, moment
from domain.errors import EntryStateError, NotPermitted

CARE_ASSIGNMENT_NAMESPACE = UUID("0c6b7f0e-5d2a-5e41-8f3b-7a9d1c2e4b60")
REGISTERED_PROVIDER_NAMESPACE = UUID("3e8a1f47-9b6c-5d20-a4e7-1f2b3c4d5e6f")


def care_assignment_id(patient_id: UUID, user_id: UUID) -> UUID:
    return uuid5(CARE_ASSIGNMENT_NAMESPACE, f"{patient_id}/{user_id}")


def registered_provider_id(patient_id: UUID) -> UUID:
    return uuid5(REGISTERED_PROVIDER_NAMESPACE, str(patient_id))


def _not_themselves(user_id: UUID, by: UUID) -> None:
    if identifier(by, "by") == user_id:
        raise NotPermitted("nobody puts themselves in a patient's care: someone else must")


class CareAssignment(Record):
    """One clinician on one patient's care team, while ``active``."""

    @staticmethod
    def create_id(patient_id: UUID, user_id: UUID) -> UUID:
        return care_assignment_id(patient_id, user_id)

    @classmethod
    def assign(cls, *, patient_id: UUID, user_id: UUID, by: UUID, at: datetime) -> CareAssignment:
        identifier(patient_id, "patient_id")
        _not_themselves(identifier(user_id, "user_id"), by)
        return cls(patient_id=patient_id, user_id=user_id, by=by, at=moment(at, "at"))

    @event("Assigned")
    def __init__(self, patient_id: UUID, user_id: UUID, by: UUID, at: datetime) -> None:
        self.patient_id = patient_id
        self.user_id = user_id
        self.active = True

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id), user_subject(self.user_id))

    def assign_again(self, *, by: UUID, at: datetime) -> None:
        if self.active:
            raise EntryStateError(f"care assignment {self.id} is already active")
        _not_themselves(self.user_id, by)
        self._assign_again(by=by, at=moment(at, "at"))

    @event("AssignedAgain")
    def _assign_again(self, by: UUID, at: datetime) -> None:
        self.active = True

    def end(self, *, by: UUID, at: datetime) -> None:
        """Take the clinician off the care team (anyone allowed to assign may, themselves too)."""
        if not self.active:
            raise EntryStateError(f"care assignment {self.id} has already ended")
        self._end(by=identifier(by, "by"), at=moment(at, "at"))

    @event("Ended")
    def _end(self, by: UUID, at: datetime) -> None:
        self.active = False


class RegisteredProvider(Record):
    """The patient's registered provider, or nobody (``user_id`` None) once cleared."""

    @staticmethod
    def create_id(patient_id: UUID) -> UUID:
        return registered_provider_id(patient_id)

    @classmethod
    def appoint(
        cls, *, patient_id: UUID, user_id: UUID, by: UUID, at: datetime
    ) -> RegisteredProvider:
        identifier(patient_id, "patient_id")
        _not_themselves(identifier(user_id, "user_id"), by)
        return cls(patient_id=patient_id, user_id=user_id, by=by, at=moment(at, "at"))

    @event("Set")
    def __init__(self, patient_id: UUID, user_id: UUID, by: UUID, at: datetime) -> None:
        self.patient_id = patient_id
        self.user_id: UUID | None = user_id
        self.previous: UUID | None = None

    def ledger_subjects(self) -> Iterable[str]:
        # The provider before a change is named too: their chain shows the relationship ended.
        users = {u for u in (self.user_id, self.previous) if u is not None}
        return (patient_subject(self.patient_id), *(user_subject(u) for u in users))

    def change(self, *, user_id: UUID, by: UUID, at: datetime) -> None:
        if identifier(user_id, "user_id") == self.user_id:
            raise EntryStateError(f"{user_id} is already the registered provider")
        _not_themselves(user_id, by)
        self._change(user_id=user_id, by=by, at=moment(at, "at"))

    @event("Changed")
    def _change(self, user_id: UUID, by: UUID, at: datetime) -> None:
        self.previous, self.user_id = self.user_id, user_id

    def clear(self, *, by: UUID, at: datetime) -> None:
        if self.user_id is None:
            raise EntryStateError("the patient has no registered provider")
        self._clear(by=identifier(by, "by"), at=moment(at, "at"))

    @event("Cleared")
    def _clear(self, by: UUID, at: datetime) -> None:
        self.previous, self.user_id = self.user_id, None
