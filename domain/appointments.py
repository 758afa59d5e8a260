"""Appointments, and the provider's days that refuse double booking.

A ``ProviderDay`` (one per provider and UTC day, with a deterministic id) holds the intervals
booked on it and refuses an overlap. The helpers :func:`book`, :func:`reschedule` and
:func:`cancel` change an appointment and every day it touches together and return the touched
aggregates; the caller saves them in ONE ``ledger.save(...)``. Two racing bookings then both try
to append the same next version of the same ``ProviderDay`` and the store refuses the second
(optimistic concurrency), so no double booking gets through even across processes.

Who booked an appointment is the ``Booked`` event's header actor, set by the server from the
session: the care view (``projections/care.py``) reads it there, and an appointment gives its
provider a care relationship only when someone other than the provider booked it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import identifier, moment, optional_identifier, text
from domain.errors import AppointmentStateError, DoubleBooking, InvalidEntry

PROVIDER_DAY_NAMESPACE = UUID("6f1d8a52-3c1e-5b7a-9d0e-2a4c6e8f0b13")
MAX_LENGTH = timedelta(hours=24)


def provider_day_id(provider_id: UUID, day: date) -> UUID:
    return uuid5(PROVIDER_DAY_NAMESPACE, f"{provider_id}/{day.isoformat()}")


def check_interval(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    moment(start, "start")
    moment(end, "end")
    if not start < end:
        raise InvalidEntry("start must be before end")
    if end - start > MAX_LENGTH:
        raise InvalidEntry("an appointment lasts at most 24 hours")
    return start, end


def days_spanned(start: datetime, end: datetime) -> list[date]:
    """The UTC days the interval [start, end) touches."""
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


class ProviderDay(Record):
    @staticmethod
    def create_id(provider_id: UUID, day: date) -> UUID:
        return provider_day_id(provider_id, day)

    @classmethod
    def open(cls, *, provider_id: UUID, day: date) -> ProviderDay:
        if type(day) is not date:
            raise InvalidEntry("day must be a date")
        return cls(provider_id=identifier(provider_id, "provider_id"), day=day)

    @event("Opened")
    def __init__(self, provider_id: UUID, day: date) -> None:
        self.provider_id = provider_id
        self.day = day
        self.slots: dict[UUID, tuple[datetime, datetime]] = {}

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.provider_id),)

    def check_free(self, start: datetime, end: datetime, *, ignoring: UUID | None = None) -> None:
        """Raise ``DoubleBooking`` if [start, end) overlaps a slot other than ``ignoring``'s."""
        check_interval(start, end)
        if self.day not in days_spanned(start, end):
            raise InvalidEntry(f"the interval does not touch provider day {self.id}")
        for other, slot in self.slots.items():
            if other != ignoring and _overlaps(slot, (start, end)):
                raise DoubleBooking(
                    f"provider {self.provider_id} already has appointment {other} at that time"
                )

    def book(self, appointment_id: UUID, start: datetime, end: datetime) -> None:
        identifier(appointment_id, "appointment_id")
        if appointment_id in self.slots:
            raise AppointmentStateError(f"appointment {appointment_id} is already on {self.id}")
        self.check_free(start, end)
        self._book(appointment_id=appointment_id, start=start, end=end)

    @event("SlotBooked")
    def _book(self, appointment_id: UUID, start: datetime, end: datetime) -> None:
        self.slots[appointment_id] = (start, end)

    def release(self, appointment_id: UUID) -> None:
        if appointment_id not in self.slots:
            raise AppointmentStateError(f"appointment {appointment_id} is not on {self.id}")
        self._release(appointment_id=appointment_id)

    @event("SlotReleased")
    def _release(self, appointment_id: UUID) -> None:
        del self.slots[appointment_id]


class Appointment(Record):
    @classmethod
    def book(
        cls, *, patient_id: UUID, provider_id: UUID, start: datetime, end: datetime, reason: str
    ) -> Appointment:
        """An appointment on its own; use the module's :func:`book` to hold the provider's time."""
        check_interval(start, end)
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            provider_id=identifier(provider_id, "provider_id"),
            start=start,
            end=end,
            reason=text(reason, "reason"),
        )

    @event("Booked")
    def __init__(
        self, patient_id: UUID, provider_id: UUID, start: datetime, end: datetime, reason: str
    ) -> None:
        self.patient_id = patient_id
        self.provider_id = provider_id
        self.start = start
        self.end = end
        self.reason = reason
        self.status = "booked"
        self.status_at: datetime | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id), user_subject(self.provider_id))

    def reschedule(self, *, start: datetime, end: datetime) -> None:
        self._check_booked("rescheduled")
        check_interval(start, end)
        if (start, end) == (self.start, self.end):
            raise InvalidEntry("the new time is the current time")
        self._reschedule(start=start, end=end)

    @event("Rescheduled")
    def _reschedule(self, start: datetime, end: datetime) -> None:
        self.start = start
        self.end = end

    def cancel(self, *, reason: str, at: datetime, by: UUID | None = None) -> None:
        self._check_booked("cancelled")
        self._cancel(
            reason=text(reason, "reason"), at=moment(at, "at"), by=optional_identifier(by, "by")
        )

    @event("Cancelled")
    def _cancel(self, reason: str, at: datetime, by: UUID | None) -> None:
        self.status = "cancelled"
        self.status_at = at

    def check_in(self, *, at: datetime) -> None:
        self._check_booked("checked in")
        self._check_in(at=moment(at, "at"))

    @event("CheckedIn")
    def _check_in(self, at: datetime) -> None:
        self.status = "checked_in"
        self.status_at = at

    def record_no_show(self, *, at: datetime) -> None:
        self._check_booked("marked no-show")
        if moment(at, "at") < self.start:
            raise AppointmentStateError(f"appointment {self.id} has not started yet")
        self._record_no_show(at=at)

    @event("NoShowRecorded")
    def _record_no_show(self, at: datetime) -> None:
        self.status = "no_show"
        self.status_at = at

    def _check_booked(self, what: str) -> None:
        if self.status != "booked":
            raise AppointmentStateError(
                f"appointment {self.id} is {self.status.replace('_', ' ')}: it cannot be {what}"
            )


# -- keeping appointments and provider days in step ------------------------------------------


def provider_days(
    get: Callable[[UUID], Any], provider_id: UUID, *intervals: tuple[datetime, datetime]
) -> dict[date, ProviderDay]:
    """The provider's days the intervals touch: loaded with ``get`` (e.g. ``ledger.repository.get``)
    or, where none exists yet, newly opened (its first save then races like any other)."""
    days: dict[date, ProviderDay] = {}
    for start, end in intervals:
        for day in days_spanned(*check_interval(start, end)):
            if day not in days:
                try:
                    days[day] = get(provider_day_id(provider_id, day))
                except AggregateNotFoundError:
                    days[day] = ProviderDay.open(provider_id=provider_id, day=day)
    return days


def _days_for(
    days: Iterable[ProviderDay], provider_id: UUID, start: datetime, end: datetime
) -> list[ProviderDay]:
    by_day = {}
    for d in days:
        if d.provider_id != provider_id:
            raise InvalidEntry(f"provider day {d.id} belongs to another provider")
        by_day[d.day] = d
    missing = [day for day in days_spanned(start, end) if day not in by_day]
    if missing:
        raise InvalidEntry(f"provider day for {missing[0].isoformat()} was not given")
    return [by_day[day] for day in days_spanned(start, end)]


def book(
    days: Iterable[ProviderDay],
    *,
    patient_id: UUID,
    provider_id: UUID,
    start: datetime,
    end: datetime,
    reason: str,
) -> list[Record]:
    """Book an appointment and hold the time on each provider day it touches.

    Returns ``[appointment, *days]``: save them all in one ``ledger.save``. Raises
    ``DoubleBooking`` (changing nothing) if the provider is already booked at that time.
    """
    check_interval(start, end)
    touched = _days_for(list(days), provider_id, start, end)
    for day in touched:
        day.check_free(start, end)
    appointment = Appointment.book(
        patient_id=patient_id, provider_id=provider_id, start=start, end=end, reason=reason
    )
    for day in touched:
        day.book(appointment.id, start, end)
    return [appointment, *touched]


def reschedule(
    appointment: Appointment, days: Iterable[ProviderDay], *, start: datetime, end: datetime
) -> list[Record]:
    """Move an appointment; ``days`` must cover its old and its new days. Returns what to save."""
    appointment._check_booked("rescheduled")
    check_interval(start, end)
    given = list(days)
    old = _days_for(given, appointment.provider_id, appointment.start, appointment.end)
    new = _days_for(given, appointment.provider_id, start, end)
    for day in new:
        day.check_free(start, end, ignoring=appointment.id)
    appointment.reschedule(start=start, end=end)
    for day in old:
        day.release(appointment.id)
    for day in new:
        day.book(appointment.id, start, end)
    return [appointment, *{d.id: d for d in (*old, *new)}.values()]


def cancel(
    appointment: Appointment,
    days: Iterable[ProviderDay],
    *,
    reason: str,
    at: datetime,
    by: UUID | None = None,
) -> list[Record]:
    """Cancel an appointment and free its time. Returns what to save."""
    touched = _days_for(list(days), appointment.provider_id, appointment.start, appointment.end)
    appointment.cancel(reason=reason, at=at, by=by)
    for day in touched:
        day.release(appointment.id)
    return [appointment, *touched]
