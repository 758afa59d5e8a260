"""A FHIR R4 Bulk Data export, read and checked whole: NDJSON files in, one accepted item or
one rejection per resource out (docs/IMPORTS.md §9). No I/O: the caller reads the files.

Every resource of a type that is read is an *item*; a Binary is content for the
DocumentReferences that name it; other types (Appointment, Provenance, AuditEvent, ...) are
counted as ignored. A rejection's location names the file, the line and the resource's type and
id, and its reasons name elements and rules, never values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.imports import fhir_records
from domain.imports.fhir_values import NotFhirJson, read_json_line
from domain.imports.report import Parsed, Rejection

# https://hl7.org/fhir/R4/datatypes.html#id
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}", re.ASCII)
READ = (
    "Patient",
    "Practitioner",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "DocumentReference",
    "Communication",
)
MAX_RESOURCES = 50_000  # as many as a lab import takes: one import, one transaction


@dataclass(frozen=True)
class SourceFile:
    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Line:
    """One resource as the file holds it, and where."""

    file: str
    file_sha256: str
    number: int
    raw: bytes
    resource: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.resource.get('resourceType')}/{self.resource.get('id')}"

    @property
    def location(self) -> str:
        return f"{self.file} line {self.number} ({self.key})"


@dataclass
class Bulk:
    """What the export holds: accepted items (``fhir_records.Item``) and rejections, the
    Binaries by id, and how many resources of other types were passed over."""

    parsed: Parsed[fhir_records.Item] = field(default_factory=Parsed)
    ignored: dict[str, int] = field(default_factory=dict)


def read_bulk(
    files: Sequence[SourceFile],
    source: str,
    known_patient: Callable[[list[tuple[str, str]]], UUID | None],
    mrn_taken: Callable[[str], bool],
) -> Bulk:
    """Check every resource of ``files`` (in the order given). ``source`` is the exporting
    system's URI; ``known_patient`` finds an existing patient sharing an identifier
    (system, value); ``mrn_taken`` says whether an MRN belongs to a patient already."""
    bulk = Bulk()
    lines: list[Line] = []
    order: dict[str, int] = {}
    for n, f in enumerate(files):
        order[f.name] = n
        digest = f.sha256
        for number, raw in enumerate(f.data.split(b"\n"), start=1):
            raw = raw.removesuffix(b"\r")
            if not raw.strip():
                continue
            location = f"{f.name} line {number}"
            try:
                resource = read_json_line(raw)
            except NotFhirJson as e:
                bulk.parsed.reject(location, f"{e}: not a FHIR resource")
                continue
            kind, ident = resource.get("resourceType"), resource.get("id")
            if type(kind) is not str or not kind:
                bulk.parsed.reject(location, "has no resourceType: not a FHIR resource")
                continue
            if type(ident) is not str or FHIR_ID.fullmatch(ident) is None:
                bulk.parsed.reject(
                    f"{location} ({kind})", "id is missing or not a FHIR id ([A-Za-z0-9-.]{1,64})"
                )
                continue
            if kind not in READ and kind != "Binary":
                bulk.ignored[kind] = bulk.ignored.get(kind, 0) + 1
                continue
            lines.append(Line(f.name, digest, number, raw, resource))
    if len(lines) > MAX_RESOURCES:
        bulk.parsed.reject(
            "file",
            f"the export holds {len(lines)} resources, more than the "
            f"{MAX_RESOURCES} one import takes: import it in parts",
        )
        return bulk
    lines = _without_duplicates(lines, bulk.parsed)
    binaries = {ln.resource["id"]: ln for ln in lines if ln.resource["resourceType"] == "Binary"}
    context = fhir_records.Context(
        source=source,
        binaries={k: v.resource for k, v in binaries.items()},
        patients={ln.resource["id"] for ln in lines if ln.resource["resourceType"] == "Patient"},
        known_patient=known_patient,
        mrn_taken=mrn_taken,
    )
    for line in lines:
        if line.resource["resourceType"] == "Binary":
            continue
        try:
            item = fhir_records.item(line.resource, context)
        except fhir_records.Refused as e:
            bulk.parsed.reject(line.location, *e.reasons)
            continue
        bulk.parsed.accept(line.location, _sourced(item, line))
    _cascade(bulk.parsed)
    bulk.parsed.rejections.sort(key=lambda r: _file_order(r, order))
    return bulk


def _sourced(item: fhir_records.Item, line: Line) -> fhir_records.Item:
    item.file, item.file_sha256, item.line, item.raw = (
        line.file,
        line.file_sha256,
        line.number,
        line.raw,
    )
    return item


def _without_duplicates(lines: list[Line], parsed: Parsed[Any]) -> list[Line]:
    """A type and id on more than one line: every such line is rejected (which is right is not
    for the importer to guess)."""
    where: dict[str, list[Line]] = {}
    for line in lines:
        where.setdefault(line.key, []).append(line)
    kept = []
    for line in lines:
        others = [o for o in where[line.key] if o is not line]
        if not others:
            kept.append(line)
            continue
        at = ", ".join(f"{o.file} line {o.number}" for o in others)
        parsed.reject(line.location, f"the same resource type and id are also at {at}")
    return kept


def _cascade(parsed: Parsed[fhir_records.Item]) -> None:
    """A resource whose patient is rejected is rejected too: no record without its patient."""
    refused = {
        r.location.rpartition("(")[2].rstrip(")")
        for r in parsed.rejections
        if r.location.endswith(")") and "(Patient/" in r.location
    }
    if not refused:
        return
    kept = []
    for accepted in parsed.accepted:
        ref = accepted.item.patient_ref
        if ref is not None and ref in refused and accepted.item.kind != "patient":
            parsed.rejections.append(
                Rejection(accepted.location, (f"its patient ({ref}) is rejected",))
            )
        else:
            kept.append(accepted)
    parsed.accepted[:] = kept


def _file_order(rejection: Rejection, order: dict[str, int]) -> tuple[int, int]:
    words = rejection.location.split()
    if len(words) >= 3 and words[1] == "line" and words[2].isdigit():
        return order.get(words[0], 0), int(words[2])
    return -1, 0
