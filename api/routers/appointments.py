"""Appointments and the provider-day schedule (clinicians and staff).

Booking, rescheduling and cancelling change the appointment and the provider's days in one
append, so a racing booking is refused (409). Reading a provider's day shows patients: one
access event per patient shown (category ``appointments``) is recorded first.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import status

from api.auth import load, now
from api.deps import LedgerDep, RunnerDep
from api.roles import FrontDesk
from api.routing import Router
from api.schemas import (
    AppointmentIn,
    AppointmentOut,
    Day,
    Purpose,
    ReasonIn,
    RescheduleIn,
    ScheduleOut,
    ScheduleRowOut,
)
from domain import appointments as scheduling
from domain.appointments import Appointment
from domain.errors import InvalidEntry
from domain.patients import Patient
from domain.users import User
from projections.reads import Reader, record_access
from projections.schedule import conflicts, provider_day

router = Router(tags=["appointments"])


def _out(a: Appointment) -> AppointmentOut:
    return AppointmentOut(
        appointment_id=a.id,
        patient_id=a.patient_id,
        provider_id=a.provider_id,
        start=a.start,
        end=a.end,
        status=a.status,
    )


@router.post("/appointments", status_code=status.HTTP_201_CREATED)
def book(body: AppointmentIn, principal: FrontDesk, ledger: LedgerDep) -> AppointmentOut:
    load(ledger, body.patient_id, Patient)
    provider = load(ledger, body.provider_id, User)
    if not provider.has_role("clinician"):
        raise InvalidEntry("provider_id must be an active clinician")
    days = scheduling.provider_days(ledger.repository.get, body.provider_id, (body.start, body.end))
    changed = scheduling.book(days.values(), **body.model_dump())
    with principal.acting():
        ledger.save(*changed)
    return _out(changed[0])  # type: ignore[arg-type]


@router.post("/appointments/{appointment_id}/reschedule")
def reschedule(
    appointment_id: UUID, body: RescheduleIn, principal: FrontDesk, ledger: LedgerDep
) -> AppointmentOut:
    appointment = load(ledger, appointment_id, Appointment)
    days = scheduling.provider_days(
        ledger.repository.get,
        appointment.provider_id,
        (appointment.start, appointment.end),
        (body.start, body.end),
    )
    changed = scheduling.reschedule(appointment, days.values(), start=body.start, end=body.end)
    with principal.acting():
        ledger.save(*changed)
    return _out(appointment)


@router.post("/appointments/{appointment_id}/cancel")
def cancel(
    appointment_id: UUID, body: ReasonIn, principal: FrontDesk, ledger: LedgerDep
) -> AppointmentOut:
    appointment = load(ledger, appointment_id, Appointment)
    days = scheduling.provider_days(
        ledger.repository.get, appointment.provider_id, (appointment.start, appointment.end)
    )
    changed = scheduling.cancel(
        appointment, days.values(), reason=body.reason, at=now(), by=principal.user_id
    )
    with principal.acting():
        ledger.save(*changed)
    return _out(appointment)


@router.post("/appointments/{appointment_id}/check-in")
def check_in(appointment_id: UUID, principal: FrontDesk, ledger: LedgerDep) -> AppointmentOut:
    appointment = load(ledger, appointment_id, Appointment)
    appointment.check_in(at=now())
    with principal.acting():
        ledger.save(appointment)
    return _out(appointment)


@router.post("/appointments/{appointment_id}/no-show")
def no_show(appointment_id: UUID, principal: FrontDesk, ledger: LedgerDep) -> AppointmentOut:
    appointment = load(ledger, appointment_id, Appointment)
    appointment.record_no_show(at=now())
    with principal.acting():
        ledger.save(appointment)
    return _out(appointment)


@router.get("/schedule/{provider_id}/{day}")
def schedule(
    provider_id: UUID,
    day: Day,
    principal: FrontDesk,
    ledger: LedgerDep,
    runner: RunnerDep,
    purpose: Purpose = "TREAT",
) -> ScheduleOut:
    """The provider's appointments touching the UTC day, and any overlapping pairs."""
    runner.catch_up_to()
    rows = provider_day(ledger.db, str(provider_id), day)
    shown = {row["appointment_id"] for row in rows}
    clashes = [
        [a, b] for a, b in conflicts(ledger.db, str(provider_id)) if a in shown or b in shown
    ]
    patients: list[UUID | None] = sorted({UUID(r["patient_id"]) for r in rows}, key=str)
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    record_access(
        ledger,
        reader,
        "query",
        "appointments",
        patients or [None],
        detail={"provider_id": str(provider_id), "day": day.isoformat()},
    )
    return ScheduleOut(
        provider_id=provider_id,
        day=day,
        appointments=[ScheduleRowOut(**r) for r in rows],
        conflicts=clashes,
    )
