"""Condition: the problem list (docs/EHI_EXPORT.md §5.5)."""

from __future__ import annotations

from typing import Any

from projections.fhir.common import (
    US_CORE,
    Tracked,
    coded,
    concept,
    day,
    patient_ref,
    profiled,
    user_ref,
)

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


def condition(record: Tracked) -> dict[str, Any]:
    problem = record.state
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": record.id,
        "meta": record.meta,
        "clinicalStatus": coded(CLINICAL, problem.status),  # active | resolved
        "verificationStatus": coded(VERIFICATION, "confirmed"),
        "category": [coded(CATEGORY, "problem-list-item", "Problem List Item")],
        "code": concept(problem.description, problem.code_system, problem.code),
        "subject": patient_ref(problem.patient_id),
    }
    if problem.onset is not None:
        resource["onsetString"] = problem.onset  # as recorded: free text, not a date
    if problem.resolved_on is not None:
        resource["abatementDateTime"] = day(problem.resolved_on)
    resource["recordedDate"] = record.first_recorded
    resource["recorder"] = user_ref(problem.recorded_by)
    return profiled(resource, US_CORE + "us-core-condition-problems-health-concerns")
