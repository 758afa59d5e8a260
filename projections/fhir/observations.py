"""Observation: laboratory results and vital signs (docs/EHI_EXPORT.md §5.4), and the Binary
holding each lab result's original source message."""

from __future__ import annotations

from typing import Any

from domain.original_times import read_time
from projections.fhir.common import (
    EXT,
    US_CORE,
    Tracked,
    base64_of,
    coded,
    instant,
    original_time,
    patient_ref,
    profiled,
    quantity,
    user_ref,
)
from projections.fhir.ndjson import json_decimal

LOINC = "http://loinc.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# HL7 v2 table 0078 flags that are the same codes in FHIR's ObservationInterpretation.
FLAGS = {"N", "A", "AA", "H", "HH", "L", "LL", "HU", "LU", "U", "D", "B", "W", "S", "R", "I"}
SOURCE_MESSAGE = EXT + "source-message"
CONVERSION = EXT + "unit-conversion"
MEDIA_TYPES = {"HL7v2": "x-application/hl7-v2+er7"}
LAB_PROFILE = US_CORE + "us-core-observation-lab"


def source_binary_id(lab_id: str) -> str:
    return f"{lab_id}.source"


def source_reference(record: Tracked) -> dict[str, Any]:
    """Where the original message is: the lab's own Binary, or (an import) the
    DocumentReference of the Document holding the message once (its bytes are the
    attachment's data), with the result's segment in it."""
    lab = record.state
    if lab.source_document_id is None:
        return {"reference": f"Binary/{source_binary_id(record.id)}"}
    return {
        "reference": f"DocumentReference/{lab.source_document_id}",
        "display": f"segment {lab.source_segment}",
    }


def lab_observation(record: Tracked) -> dict[str, Any]:
    lab = record.state
    extensions: list[dict[str, Any]] = [
        {"url": SOURCE_MESSAGE, "valueReference": source_reference(record)}
    ]
    if lab.collected_at is not None:
        extensions.append(original_time(lab.collected_at))
    extensions.extend(_conversion(c) for c in lab.conversions)
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": record.id,
        "meta": record.meta,
        "extension": extensions,
        "status": "corrected" if lab.value_version > 1 else "final",
        "category": [coded(CATEGORY, "laboratory", "Laboratory")],
        "code": {"coding": [{"system": LOINC, "code": lab.loinc_code}], "text": lab.test_name},
        "subject": patient_ref(lab.patient_id),
        **_effective(lab.collected_at),
        "issued": record.first_recorded,
        "performer": [{"display": lab.performing_lab}],
        "valueQuantity": quantity(lab.value, lab.unit),
    }
    if lab.abnormal_flag is not None:
        flag = lab.abnormal_flag
        resource["interpretation"] = [
            {"coding": [{"system": INTERPRETATION, "code": flag}], "text": flag}
            if flag in FLAGS
            else {"text": flag}
        ]
    reference = _reference_range(lab)
    if reference:
        resource["referenceRange"] = [reference]
    return profiled(resource, LAB_PROFILE)


def _effective(collected_at: str | None) -> dict[str, Any]:
    """The collection time as FHIR dateTime (docs/EHI_EXPORT.md §5.4): its text as received
    rides in the ``original-time`` extension, the import time is ``issued``."""
    when = None if collected_at is None else read_time(collected_at)
    return {} if when is None else {"effectiveDateTime": when.fhir}


def _reference_range(lab: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if lab.reference_low is not None:
        found["low"] = quantity(lab.reference_low, lab.unit)
    if lab.reference_high is not None:
        found["high"] = quantity(lab.reference_high, lab.unit)
    if lab.reference_range is not None:
        found["text"] = lab.reference_range
    return found


def _conversion(c: dict[str, Any]) -> dict[str, Any]:
    factor, _ = json_decimal(c["factor"])
    return {
        "url": CONVERSION,
        "extension": [
            {"url": "original", "valueQuantity": quantity(c["from_value"], c["from_unit"])},
            {"url": "ofVersion", "valueInteger": c["of_version"]},
            {"url": "converted", "valueQuantity": quantity(c["converted_value"], c["to_unit"])},
            {"url": "factor", "valueDecimal": factor},
            {"url": "rule", "valueString": c["rule"]},
        ],
    }


def source_binary(record: Tracked) -> dict[str, Any]:
    lab = record.state
    return {
        "resourceType": "Binary",
        "id": source_binary_id(record.id),
        "contentType": MEDIA_TYPES.get(lab.source_format, "application/octet-stream"),
        "data": base64_of(lab.source_message),
    }


def vital_observation(record: Tracked) -> dict[str, Any]:
    vital = record.state
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": record.id,
        "meta": record.meta,
        "status": "entered-in-error" if vital.in_error else "final",
        "category": [coded(CATEGORY, "vital-signs", "Vital Signs")],
        "code": {"coding": [{"system": LOINC, "code": vital.loinc_code}], "text": vital.name},
        "subject": patient_ref(vital.patient_id),
        "effectiveDateTime": instant(vital.measured_at),
        "issued": record.first_recorded,
        "valueQuantity": quantity(vital.value, vital.unit),
    }
    if vital.measured_by is not None:
        resource["performer"] = [user_ref(vital.measured_by)]
    return resource
