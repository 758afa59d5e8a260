"""DocumentReference: stored documents, and encounter notes with their addenda
(docs/EHI_EXPORT.md §5.8-§5.9).

Every attachment carries its bytes (``data``), never a URL: a Bulk Data attachment URL must be
absolute, and an export written to a folder has no base to make one from; the bytes are in the
export once, in the DocumentReference.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any

from projections.fhir.common import (
    DATA_ABSENT,
    US_CORE,
    Tracked,
    base64_of,
    instant,
    patient_ref,
    profiled,
    user_ref,
)

CATEGORY = {
    "coding": [
        {
            "system": "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
            "code": "clinical-note",
            "display": "Clinical Note",
        }
    ]
}
NOTE_TYPES = {  # LOINC document types for the note kinds Chartledger uses
    "progress": ("11506-3", "Progress note"),
    "consult": ("11488-4", "Consult note"),
    "discharge": ("18842-5", "Discharge summary"),
    "history": ("34117-2", "History and physical note"),
    "procedure": ("28570-0", "Procedure note"),
}
TEXT = "text/plain; charset=utf-8"
PROFILE = US_CORE + "us-core-documentreference"
# Neither the type nor the category of an uploaded file is recorded: FHIR's way to say so.
UNKNOWN = {"coding": [{"system": DATA_ABSENT, "code": "unknown", "display": "Unknown"}]}
# A document whose media type says what it is: an HL7 v2 message imported from a laboratory.
MEDIA_DOCUMENT_TYPES = {
    "x-application/hl7-v2+er7": ("11502-2", "Laboratory report"),
}


def _attachment(data: bytes, content_type: str, **more: Any) -> dict[str, Any]:
    return {
        "contentType": content_type,
        "data": base64_of(data),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),  # FHIR: SHA-1
        **more,
    }


def _note_type(kind: str) -> dict[str, Any]:
    known = NOTE_TYPES.get(kind)
    if known is None:
        return {**UNKNOWN, "text": kind}
    code, display = known
    return {
        "coding": [{"system": "http://loinc.org", "code": code, "display": display}],
        "text": kind,
    }


def note_references(record: Tracked) -> Iterator[dict[str, Any]]:
    """The note, then one DocumentReference per addendum, each appending to the note."""
    note = record.state
    main: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": record.id,
        "meta": record.meta,
        "status": "current",
        "docStatus": "final" if note.is_signed else "preliminary",
        "type": _note_type(note.kind),
        "category": [CATEGORY],
        "subject": patient_ref(note.patient_id),
        "date": record.first_recorded,
        "author": [user_ref(note.author_id)],
    }
    if note.signed_by is not None:
        main["authenticator"] = user_ref(note.signed_by)
    attachment = _attachment(note.text.encode("utf-8"), TEXT)
    if note.signed_at is not None:
        attachment["creation"] = instant(note.signed_at)
    main["content"] = [{"attachment": attachment}]
    yield profiled(main, PROFILE)
    for addendum in note.addenda:
        yield profiled(
            {
                "resourceType": "DocumentReference",
                "id": str(addendum["addendum_id"]),
                "status": "current",
                "docStatus": "amended",
                "type": _note_type(note.kind),
                "category": [CATEGORY],
                "subject": patient_ref(note.patient_id),
                "date": instant(addendum["at"]),
                "author": [user_ref(addendum["author_id"])],
                "description": addendum["reason"],
                "relatesTo": [
                    {"code": "appends", "target": {"reference": f"DocumentReference/{record.id}"}}
                ],
                "content": [
                    {
                        "attachment": _attachment(
                            addendum["text"].encode("utf-8"), TEXT, creation=instant(addendum["at"])
                        )
                    }
                ],
            },
            PROFILE,
        )


def _document_type(media_type: str) -> dict[str, Any]:
    known = MEDIA_DOCUMENT_TYPES.get(media_type)
    if known is None:
        return UNKNOWN
    code, display = known
    return {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]}


def document_reference(record: Tracked) -> dict[str, Any]:
    doc = record.state
    attachment = _attachment(
        doc.content, doc.media_type, title=doc.original_filename, creation=record.first_recorded
    )
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": record.id,
        "meta": record.meta,
        # The SHA-256 the ledger stored it by, as an RFC 6920 named-information URI.
        "identifier": [
            {
                "system": "urn:ietf:rfc:3986",
                "value": "ni:///sha-256;"
                + base64.urlsafe_b64encode(bytes.fromhex(doc.sha256)).decode().rstrip("="),
            }
        ],
        "status": "current",
        "type": _document_type(doc.media_type),
        "category": [UNKNOWN],
        "subject": patient_ref(doc.patient_id),
        "date": record.first_recorded,
        "author": [user_ref(doc.uploader_id)],
        "content": [{"attachment": attachment}],
    }
    times = [
        {"url": "created", "valueString": doc.source_created} if doc.source_created else None,
        {"url": "modified", "valueString": doc.source_modified} if doc.source_modified else None,
    ]
    present = [t for t in times if t is not None]
    if present:
        resource["extension"] = [
            {
                "url": "https://chartledger.local/fhir/StructureDefinition/source-file-times",
                "extension": present,
            }
        ]
    return profiled(resource, PROFILE)
