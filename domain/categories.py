"""The data category of each part of the clinical record, by the module its events come from.

One vocabulary (that of ``domain.access.DATA_CATEGORIES``) for the audit view, which labels every
event, and for retention, whose policies are written per category.
"""

from __future__ import annotations

RECORD_CATEGORIES = {
    "domain.patients": "demographics",
    "domain.identifiers": "demographics",
    "domain.notes": "notes",
    "domain.problems": "problems",
    "domain.medications": "medications",
    "domain.allergies": "allergies",
    "domain.vitals": "vitals",
    "domain.labs": "labs",
    "domain.amendments": "amendments",
    "domain.documents": "documents",
    "domain.messages": "messages",
    "domain.appointments": "appointments",
}
