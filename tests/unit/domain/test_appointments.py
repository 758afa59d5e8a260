from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from domain import appointments as schedule
from domain.appointments import Appointment, ProviderDay, days_spanned, provider_day_id
from domain.base import patient_subject, user_subject
from domain.errors import AppointmentStateError, DoubleBooking, InvalidEntry
from tests.unit.domain.memory import Memory, assert_round_trips, subjects

NINE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HALF = timedelta(minutes=30)


def book(memory: Memory, provider: UUID, start: datetime, end: datetime) -> Appointment:
    days = schedule.provider_days(memory.repository.get, provider, (start, end))
    touched = schedule.book(
        days.values(), patient_id=uuid4(), provider_id=provider, start=start, end=end, reason="x"
    )
    memory.save(*touched)
    appointment = touched[0]
    assert isinstance(appointment, Appointment)
    return appointment


def days_of(memory: Memory, appointment: Appointment, *more: tuple[datetime, datetime]) -> list:
    intervals = [(appointment.start, appointment.end), *more]
    return list(
        schedule.provider_days(memory.repository.get, appointment.provider_id, *intervals).values()
    )


def test_double_booking_is_refused(memory: Memory) -> None:
    provider = uuid4()
    first = book(memory, provider, NINE, NINE + HALF)
    with pytest.raises(
        DoubleBooking, match=rf"^provider {provider} already has appointment {first.id}"
    ):
        book(memory, provider, NINE + timedelta(minutes=15), NINE + timedelta(minutes=45))
    day = memory.repository.get(provider_day_id(provider, NINE.date()))
    assert list(day.slots) == [first.id]


def test_back_to_back_appointments_and_other_providers_do_not_clash(memory: Memory) -> None:
    provider = uuid4()
    book(memory, provider, NINE, NINE + HALF)
    book(memory, provider, NINE + HALF, NINE + 2 * HALF)
    book(memory, uuid4(), NINE, NINE + HALF)


def test_the_same_instant_in_another_time_zone_is_still_a_double_booking(memory: Memory) -> None:
    provider = uuid4()
    book(memory, provider, NINE, NINE + HALF)
    eastern = timezone(timedelta(hours=-5))
    with pytest.raises(DoubleBooking):
        book(memory, provider, NINE.astimezone(eastern), (NINE + HALF).astimezone(eastern))


def test_an_appointment_over_midnight_holds_both_days(memory: Memory) -> None:
    provider = uuid4()
    late = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    assert days_spanned(late, late + 2 * HALF) == [date(2026, 1, 5), date(2026, 1, 6)]
    assert days_spanned(NINE, NINE + HALF) == [date(2026, 1, 5)]
    book(memory, provider, late, late + 2 * HALF)
    with pytest.raises(DoubleBooking):
        book(memory, provider, late + 2 * HALF - timedelta(minutes=1), late + 3 * HALF)


def test_racing_bookings_are_refused_by_optimistic_concurrency(memory: Memory) -> None:
    provider = uuid4()
    start, end = NINE, NINE + HALF
    first = schedule.book(
        schedule.provider_days(memory.repository.get, provider, (start, end)).values(),
        patient_id=uuid4(), provider_id=provider, start=start, end=end, reason="x",
    )  # fmt: skip
    second = schedule.book(
        schedule.provider_days(memory.repository.get, provider, (start, end)).values(),
        patient_id=uuid4(), provider_id=provider, start=start, end=end, reason="y",
    )  # fmt: skip
    memory.save(*first)
    with pytest.raises(IntegrityError):
        memory.save(*second)
    with pytest.raises(AggregateNotFoundError):
        memory.repository.get(second[0].id)


def test_reschedule_moves_the_slot_and_refuses_a_taken_time(memory: Memory) -> None:
    provider = uuid4()
    a = book(memory, provider, NINE, NINE + HALF)
    b = book(memory, provider, NINE + 2 * HALF, NINE + 3 * HALF)
    new = (NINE + timedelta(days=1), NINE + timedelta(days=1) + HALF)
    memory.save(*schedule.reschedule(a, days_of(memory, a, new), start=new[0], end=new[1]))
    old_day = memory.repository.get(provider_day_id(provider, NINE.date()))
    new_day = memory.repository.get(provider_day_id(provider, new[0].date()))
    assert list(old_day.slots) == [b.id] and list(new_day.slots) == [a.id]
    b = memory.repository.get(b.id)
    with pytest.raises(DoubleBooking):
        schedule.reschedule(b, days_of(memory, b, new), start=new[0], end=new[1])


def test_rescheduling_within_its_own_time_does_not_clash_with_itself(memory: Memory) -> None:
    a = book(memory, uuid4(), NINE, NINE + HALF)
    touched = schedule.reschedule(a, days_of(memory, a), start=NINE, end=NINE + 2 * HALF)
    memory.save(*touched)
    assert memory.repository.get(a.id).end == NINE + 2 * HALF


def test_cancel_frees_the_time(memory: Memory) -> None:
    provider = uuid4()
    a = book(memory, provider, NINE, NINE + HALF)
    memory.save(*schedule.cancel(a, days_of(memory, a), reason="patient called", at=NINE))
    book(memory, provider, NINE, NINE + HALF)
    with pytest.raises(AppointmentStateError, match="is cancelled: it cannot be checked in"):
        memory.repository.get(a.id).check_in(at=NINE)


def test_only_a_booked_appointment_is_checked_in_cancelled_or_marked_no_show() -> None:
    a = Appointment.book(
        patient_id=uuid4(), provider_id=uuid4(), start=NINE, end=NINE + HALF, reason="x"
    )
    a.check_in(at=NINE)
    with pytest.raises(AppointmentStateError, match="is checked in: it cannot be cancelled"):
        a.cancel(reason="x", at=NINE)
    with pytest.raises(AppointmentStateError):
        a.record_no_show(at=NINE + HALF)
    with pytest.raises(AppointmentStateError):
        a.reschedule(start=NINE + HALF, end=NINE + 2 * HALF)


def test_a_no_show_is_recorded_only_once_the_appointment_has_started() -> None:
    a = Appointment.book(
        patient_id=uuid4(), provider_id=uuid4(), start=NINE, end=NINE + HALF, reason="x"
    )
    with pytest.raises(AppointmentStateError, match="has not started yet"):
        a.record_no_show(at=NINE - HALF)
    a.record_no_show(at=NINE + HALF)
    assert a.status == "no_show"
    with pytest.raises(AppointmentStateError):
        a.check_in(at=NINE + HALF)


def test_an_appointment_ends_after_it_starts() -> None:
    with pytest.raises(InvalidEntry, match="start must be before end"):
        Appointment.book(patient_id=uuid4(), provider_id=uuid4(), start=NINE, end=NINE, reason="x")


def test_the_helpers_need_every_day_the_appointment_touches(memory: Memory) -> None:
    provider = uuid4()
    with pytest.raises(InvalidEntry, match="provider day for 2026-01-05 was not given"):
        schedule.book(
            [], patient_id=uuid4(), provider_id=provider, start=NINE, end=NINE + HALF, reason="x"
        )
    other = ProviderDay.open(provider_id=uuid4(), day=NINE.date())
    with pytest.raises(InvalidEntry, match="belongs to another provider"):
        schedule.book(
            [other],
            patient_id=uuid4(),
            provider_id=provider,
            start=NINE,
            end=NINE + HALF,
            reason="x",
        )


def test_subjects_are_the_patient_and_provider_and_days_replay(memory: Memory) -> None:
    provider = uuid4()
    a = book(memory, provider, NINE, NINE + HALF)
    assert subjects(memory, a) == {
        tuple(sorted([patient_subject(a.patient_id), user_subject(provider)]))
    }
    day = memory.repository.get(provider_day_id(provider, NINE.date()))
    assert subjects(memory, day) == {(user_subject(provider),)}
    a.check_in(at=NINE)
    assert_round_trips(memory, a)
    assert day.id == provider_day_id(provider, date(2026, 1, 5))
