"""Patient: demographics and identifiers (docs/EHI_EXPORT.md §5.1)."""

from __future__ import annotations

from typing import Any

from projections.fhir.common import US_CORE, Context, Tracked, day, profiled

MR = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"},
    ],
    "text": "Medical record number",
}


def patient(record: Tracked, context: Context) -> dict[str, Any]:
    p = record.state
    identifiers: list[dict[str, Any]] = [
        {"use": "usual", "type": MR, "system": context.mrn_system, "value": p.mrn}
    ]
    identifiers.extend({"system": i["system"], "value": i["value"]} for i in p.identifiers)
    return profiled(
        {
            "resourceType": "Patient",
            "id": record.id,
            "meta": record.meta,
            "identifier": identifiers,
            "name": [{"use": "official", "family": p.family_name, "given": [p.given_name]}],
            "gender": p.sex,  # the ledger's sexes are FHIR AdministrativeGender codes
            "birthDate": day(p.birth_date),
        },
        US_CORE + "us-core-patient",
    )
