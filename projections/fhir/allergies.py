"""AllergyIntolerance: allergies recorded and inactivated (docs/EHI_EXPORT.md §5.7)."""

from __future__ import annotations

from typing import Any

from projections.fhir.common import (
    US_CORE,
    Tracked,
    coded,
    concept,
    patient_ref,
    profiled,
    user_ref,
)

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
NOT_RECORDED = "reaction not recorded"


def allergy_intolerance(record: Tracked) -> dict[str, Any]:
    allergy = record.state
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "id": record.id,
        "meta": record.meta,
        "clinicalStatus": coded(CLINICAL, "active" if allergy.active else "inactive"),
        "verificationStatus": coded(VERIFICATION, "confirmed"),
        "code": concept(allergy.substance, allergy.code_system, allergy.code),
        "patient": patient_ref(allergy.patient_id),
        "recordedDate": record.first_recorded,
        "recorder": user_ref(allergy.recorded_by),
    }
    if allergy.reaction is not None or allergy.severity is not None:
        # FHIR needs a manifestation for any reaction; a severity alone gets a stated gap.
        reaction: dict[str, Any] = {
            "manifestation": [{"text": allergy.reaction or NOT_RECORDED}],
        }
        if allergy.severity is not None:
            reaction["severity"] = allergy.severity  # mild | moderate | severe, as in FHIR
        resource["reaction"] = [reaction]
    return profiled(resource, US_CORE + "us-core-allergyintolerance")
