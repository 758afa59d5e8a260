"""Appointment, and the Encounter each check-in began (docs/EHI_EXPORT.md §5.2-§5.3)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from projections.fhir.common import Tracked, instant, patient_ref, user_ref

STATUS = {
    "booked": "booked",
    "cancelled": "cancelled",
    "checked_in": "arrived",
    "no_show": "noshow",
}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ENCOUNTERS = uuid5(UUID(int=0), "chartledger encounters")


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


def encounter(record: Tracked, transaction_time: str) -> dict[str, Any] | None:
    """The ambulatory encounter of a checked-in appointment; None for any other appointment."""
    a = record.state
    if a.status != "checked_in":
        return None
    end = instant(a.end)
    return {
        "resourceType": "Encounter",
        "id": encounter_id(record.id),
        "meta": record.meta,
        # Timestamps compare as text: the export's own time decides whether it is over.
        "status": "finished" if end <= transaction_time else "in-progress",
        "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "subject": patient_ref(a.patient_id),
        "participant": [{"individual": user_ref(a.provider_id)}],
        "appointment": [{"reference": f"Appointment/{record.id}"}],
        "period": {"start": instant(a.status_at), "end": end},
        "reasonCode": [{"text": a.reason}],
    }
