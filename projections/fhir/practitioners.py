"""Practitioner: every practice user an exported resource references; Organization: the
practice (docs/EHI_EXPORT.md §5.15-§5.16).

A user's record holds their name, roles and whether they are active; the resource carries the
name, the id and whether they are active. Nothing of their login (``domain.credentials``) is
read, so no secret can reach the export.
"""

from __future__ import annotations

import re
from typing import Any

from projections.fhir.common import US_CORE, Context, profiled, uri_identifier

# A user's reference as ``common.user_ref`` writes it, in an NDJSON line.
REFERENCE = re.compile(r'"reference":"Practitioner/([^"]+)"', re.ASCII)
ORGANIZATION_PROFILE = US_CORE + "us-core-organization"
ABSENT = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"


def referenced_users(line: str) -> list[str]:
    """The user ids an NDJSON line references (``Practitioner/<id>``)."""
    return REFERENCE.findall(line) if "Practitioner/" in line else []


def practitioner(user_id: str, user: Any | None) -> dict[str, Any]:
    """``user`` is the user's record as of the export's log size, or None when the log holds
    no readable one (a user disposed of, or named by an import): then only the id is known.

    The name is one text, as the practice entered it: the record does not split it into
    family and given names, so the resource does not claim US Core's Practitioner profile
    (which needs ``name.family``)."""
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": user_id,
        "identifier": [uri_identifier(user_id)],
    }
    if user is not None:
        resource["active"] = bool(user.active)
        resource["name"] = [{"text": user.name}]
    return resource


def organization(context: Context, name: str | None) -> dict[str, Any]:
    """The practice, which holds every record and on whose behalf every user acts."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "id": context.practice_id,
        "identifier": [uri_identifier(context.practice_id)],
        "active": True,
    }
    if name:
        resource["name"] = name
        return profiled(resource, ORGANIZATION_PROFILE)
    resource["_name"] = {"extension": [{"url": ABSENT, "valueCode": "unknown"}]}
    return resource
