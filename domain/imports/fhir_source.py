"""Where an imported FHIR resource came from: one ``SourceResource`` per resource read, kept
next to the record it became (docs/IMPORTS.md §9.4).

It keeps the source system, the resource's type and id (the source's identifier of it), the
file, line and the file's SHA-256, the resource's bytes exactly as the file held them, its
times as sent, the record made of it (none for a Practitioner, which is kept as a source only),
and the source practitioners it references (by reference or identifier,
with their display), since practice users are never made of them. Its id is derived from the
source system and the resource's type and id, keyed by the practice as an MRN claim's is, so
importing the same resource again finds it (no duplicate), and two imports racing to record it
are refused by the store.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import identifier, optional_identifier, raw_bytes, text
from domain.errors import InvalidEntry


def source_key(source: str, resource_type: str, resource_id: str) -> str:
    """What the stream id is derived from: the caller keys it (``Ledger.private_id``), so the
    id, which is public metadata, does not give away which source record it is."""
    return f"{source}\n{resource_type}/{resource_id}"


class SourceResource(Record):
    @staticmethod
    def create_id(stream_id: UUID) -> UUID:
        return stream_id

    @classmethod
    def record(
        cls,
        *,
        stream_id: UUID,
        source: str,
        resource_type: str,
        resource_id: str,
        file: str,
        line: int,
        file_sha256: str,
        resource: bytes,
        times: dict[str, str],
        record_id: UUID | None,
        patient_id: UUID | None,
        imported_by: UUID,
        practitioners: Sequence[dict[str, str]] = (),
    ) -> SourceResource:
        if type(line) is not int or line < 1:
            raise InvalidEntry("line must be a positive whole number")
        return cls(
            stream_id=identifier(stream_id, "stream_id"),
            source=text(source, "source"),
            resource_type=text(resource_type, "resource_type"),
            resource_id=text(resource_id, "resource_id"),
            file=text(file, "file"),
            line=line,
            file_sha256=text(file_sha256, "file_sha256"),
            resource=raw_bytes(resource, "resource"),
            times={text(k, "times"): text(v, "times") for k, v in times.items()},
            record_id=optional_identifier(record_id, "record_id"),
            patient_id=optional_identifier(patient_id, "patient_id"),
            imported_by=identifier(imported_by, "imported_by"),
            practitioners=[
                {text(k, "practitioners"): text(v, "practitioners") for k, v in p.items()}
                for p in practitioners
            ],
        )

    @event("Recorded")
    def __init__(
        self,
        stream_id: UUID,
        source: str,
        resource_type: str,
        resource_id: str,
        file: str,
        line: int,
        file_sha256: str,
        resource: bytes,
        times: dict[str, str],
        record_id: UUID | None,
        patient_id: UUID | None,
        imported_by: UUID,
        practitioners: list[dict[str, str]],
    ) -> None:
        self.source = source
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.file = file
        self.line = line
        self.file_sha256 = file_sha256
        self.resource = resource
        self.times = dict(times)
        self.record_id = record_id
        self.patient_id = patient_id
        self.imported_by = imported_by
        self.practitioners = [dict(p) for p in practitioners]

    def ledger_subjects(self) -> Iterable[str]:
        if self.patient_id is not None:
            return (patient_subject(self.patient_id),)
        return (user_subject(self.imported_by),)
