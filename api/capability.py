"""``GET /fhir/metadata``: the FHIR R4 CapabilityStatement of Chartledger's FHIR endpoint, which
offers the Bulk Data export only (HL7 Bulk Data Access IG v2; docs/EHI_EXPORT.md, Bulk Data API).
"""

from __future__ import annotations

from typing import Any

from projections.ehi_export import RESOURCE_TYPES

BULK_DATA = "http://hl7.org/fhir/uv/bulkdata"
SYSTEM_EXPORT = f"{BULK_DATA}/OperationDefinition/export"
PATIENT_EXPORT = f"{BULK_DATA}/OperationDefinition/patient-export"
SOFTWARE_DATE = "2026-12-07"  # when this statement last changed


def capability_statement(base_url: str, version: str, documentation_url: str) -> dict[str, Any]:
    """What the endpoint at ``<base_url>fhir`` supports: the system- and patient-level
    ``$export`` (no Group), NDJSON output of ``RESOURCE_TYPES``, bearer tokens."""
    resources: list[dict[str, Any]] = []
    for kind in RESOURCE_TYPES:
        resource: dict[str, Any] = {"type": kind}
        if kind == "Patient":
            resource["operation"] = [{"name": "export", "definition": PATIENT_EXPORT}]
        resources.append(resource)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": SOFTWARE_DATE,
        "publisher": "Chartledger",
        "kind": "instance",
        "instantiates": [f"{BULK_DATA}/CapabilityStatement/bulk-data"],
        "software": {"name": "Chartledger", "version": version},
        "implementation": {
            "description": "Chartledger EHI export over FHIR Bulk Data (format: "
            f"{documentation_url})",
            "url": f"{base_url}fhir",
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Kick-off with GET and `Prefer: respond-async`; `_type`, "
                "`_since` and `_outputFormat=application/fhir+ndjson` are honoured. Files and "
                "status need the bearer token of a session (POST /auth/login) of an owner or a "
                "risk manager.",
                "security": {
                    "description": "Bearer token of a Chartledger session (password and TOTP)",
                },
                "resource": resources,
                "operation": [{"name": "export", "definition": SYSTEM_EXPORT}],
            }
        ],
    }
