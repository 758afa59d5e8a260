"""MedicationRequest: medications started, dose changed, stopped (docs/EHI_EXPORT.md §5.6).

A medication record is the prescriber's order as the chart keeps it (who prescribed it, the
dose, since when, until when), so it is exported as the order, as US Core profiles it; the
days it runs are the dosage's bounds. No MedicationStatement is written beside it: the record
holds nothing a statement would add (no informant other than the prescriber, no adherence).
"""

from __future__ import annotations

from typing import Any

from projections.fhir.common import (
    EXT,
    US_CORE,
    Tracked,
    concept,
    day,
    patient_ref,
    profiled,
    quantity,
    user_ref,
)

PROFILE = US_CORE + "us-core-medicationrequest"
STOPPED_ON = EXT + "stopped-on"


def medication_request(record: Tracked) -> dict[str, Any]:
    med = record.state
    bounds = {"start": day(med.started_on)}
    stopped_early = med.stopped_on is not None and med.stopped_on < med.started_on
    if med.stopped_on is not None and not stopped_early:
        bounds["end"] = day(med.stopped_on)
    words = [f"{med.dose_value} {med.dose_unit}", med.route, med.frequency]
    dosage: dict[str, Any] = {"text": " ".join(w for w in words if w)}
    timing: dict[str, Any] = {"repeat": {"boundsPeriod": bounds}}
    if med.frequency is not None:
        timing["code"] = {"text": med.frequency}
    dosage["timing"] = timing
    if med.route is not None:
        dosage["route"] = {"text": med.route}
    dosage["doseAndRate"] = [{"doseQuantity": quantity(med.dose_value, med.dose_unit)}]
    resource: dict[str, Any] = {"resourceType": "MedicationRequest", "id": record.id}
    resource["meta"] = record.meta
    if stopped_early:
        # A stop dated before the start (the chart accepts it) cannot be a Period's end
        # (per-1): the day travels as recorded, beside the bounds.
        resource["extension"] = [{"url": STOPPED_ON, "valueDate": day(med.stopped_on)}]
    resource.update(
        {
            "status": "active" if med.active else "stopped",
            "intent": "order",
            "reportedBoolean": False,  # the prescriber recorded it in this practice's chart
            "medicationCodeableConcept": concept(med.drug, med.code_system, med.code),
            "subject": patient_ref(med.patient_id),
            "authoredOn": record.first_recorded,
            "requester": user_ref(med.prescriber_id),
            "dosageInstruction": [dosage],
        }
    )
    return profiled(resource, PROFILE)
