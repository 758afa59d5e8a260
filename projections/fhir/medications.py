"""MedicationStatement: medications started, dose changed, stopped (docs/EHI_EXPORT.md §5.6)."""

from __future__ import annotations

from typing import Any

from projections.fhir.common import Tracked, concept, day, patient_ref, quantity, user_ref


def medication_statement(record: Tracked) -> dict[str, Any]:
    med = record.state
    period = {"start": day(med.started_on)}
    if med.stopped_on is not None:
        period["end"] = day(med.stopped_on)
    words = [f"{med.dose_value} {med.dose_unit}", med.route, med.frequency]
    dosage: dict[str, Any] = {"text": " ".join(w for w in words if w)}
    if med.frequency is not None:
        dosage["timing"] = {"code": {"text": med.frequency}}
    if med.route is not None:
        dosage["route"] = {"text": med.route}
    dosage["doseAndRate"] = [{"doseQuantity": quantity(med.dose_value, med.dose_unit)}]
    return {
        "resourceType": "MedicationStatement",
        "id": record.id,
        "meta": record.meta,
        "status": "active" if med.active else "stopped",
        "medicationCodeableConcept": concept(med.drug, med.code_system, med.code),
        "subject": patient_ref(med.patient_id),
        "effectivePeriod": period,
        "dateAsserted": record.first_recorded,
        "informationSource": user_ref(med.prescriber_id),
        "dosage": [dosage],
    }
