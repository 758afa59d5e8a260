"""Appointment, and the Encounter each check-in began (docs/EHI_EXPORT.md §5.2-§5.3)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from projections.fhir.common import (
    US_CORE,
    Context,
    Tracked,
    instant,
    organization_ref,
    patient_ref,
    profiled,
    user_ref,
)

STATUS = {
    "booked": "booked",
    "cancelled": "cancelled",
    "checked_in": "arrived",
    "no_show": "noshow",
}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENCOUNTERS = uuid5(UUID(int=0), "chartledger encounters")
PROFILE = US_CORE + "us-core-encounter"
# What the record knows of every encounter: a booked visit the patient checked in to, in
# person or not (nothing records which); SNOMED CT's general code, the booking's reason beside.
VISIT = {
    "coding": [
        {
            "system": "http://snomed.info/sct",
            "code": "308335008",
            "display": "Patient encounter procedure",
        }
    ],
    "text": "booked appointment, checked in",
}
PRIMARY_PERFORMER = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "PPRF",
            "display": "primary performer",
        }
    ]
}


def encounter_id(appointment_id: str) -> str:
    return str(uuid5(ENCOUNTERS, appointment_id))


def appointment(record: Tracked) -> dict[str, Any]:
    a = record.state
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": record.id,
        "meta": record.meta,
        "status": STATUS[a.status],
    }
    if a.status == "cancelled":
        reason = next(
            (e.reason for h, e in reversed(record.events) if h.type.endswith(".Cancelled")), None
        )
        if reason is not None:
            resource["cancelationReason"] = {"text": reason}
    resource.update(
        {
            "reasonCode": [{"text": a.reason}],
            "start": instant(a.start),
            "end": instant(a.end),
            "created": record.first_recorded,
            "participant": [
                {"actor": patient_ref(a.patient_id), "status": "accepted"},
                {"actor": user_ref(a.provider_id), "status": "accepted"},
            ],
        }
    )
    return resource


def encounter_timing(checked_in: str, scheduled_end: str, now: str) -> tuple[dict[str, str], str]:
    """The Encounter's period and status from what the record holds: the check-in time and
    the appointment's scheduled end (no check-out is recorded), at the export's time ``now``.

    The encounter starts at check-in. The scheduled end is its end only when it comes after the
    check-in and has passed (the visit is then ``finished``); before it has passed the
    encounter is ``in-progress`` and has no end yet. A check-in at or after the scheduled end
    (a late arrival) has no known end: the period has its start only and the status is
    ``unknown``. So ``start <= end`` (FHIR per-1) always holds. Timestamps are ledger
    timestamps (UTC, microseconds, ``Z``), which compare as text.
    """
    if checked_in < scheduled_end:
        if scheduled_end <= now:
            return {"start": checked_in, "end": scheduled_end}, "finished"
        return {"start": checked_in}, "in-progress"
    return {"start": checked_in}, "unknown"


def encounter(record: Tracked, context: Context) -> dict[str, Any] | None:
    """The ambulatory encounter of a checked-in appointment; None for any other appointment."""
    a = record.state
    if a.status != "checked_in":
        return None
    period, status = encounter_timing(
        instant(a.status_at), instant(a.end), context.transaction_time
    )
    return profiled(
        {
            "resourceType": "Encounter",
            "id": encounter_id(record.id),
            "meta": record.meta,
            "status": status,
            "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [VISIT],
            "subject": patient_ref(a.patient_id),
            "participant": [{"type": [PRIMARY_PERFORMER], "individual": user_ref(a.provider_id)}],
            "appointment": [{"reference": f"Appointment/{record.id}"}],
            "period": period,
            "reasonCode": [{"text": a.reason}],
            "serviceProvider": organization_ref(context.practice_id),
        },
        PROFILE,
    )
