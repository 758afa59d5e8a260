"""FHIR Bulk Data imports, applied (docs/IMPORTS.md §9): read the export's files, check every
resource (``domain.imports.fhir_bulk``), then write every record, its source record and the
import's summary in ONE ledger transaction, or nothing.

Patients are matched by identifier to the practice's patients (their own identifiers, their
MRN under the practice's MRN system, and the source's id of them that an earlier import kept)
or registered. Resources an earlier import recorded already (same source, type and id) are
passed over: importing the same files again writes no record twice.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from eventsourcing.domain import Aggregate

from api.importing import Importer, _Batch, _decide, _summarize, _tick, recorded
from domain.allergies import Allergy
from domain.documents import Document
from domain.encounters import Encounter
from domain.errors import ChartError, InvalidEntry
from domain.identifiers import MrnClaim
from domain.imports.fhir_bulk import SourceFile, read_bulk
from domain.imports.fhir_parts import reference_id
from domain.imports.fhir_records import Item
from domain.imports.fhir_source import SourceResource, source_key
from domain.imports.report import ImportReport, Parsed, Rejection
from domain.labs import LabResult
from domain.medications import Medication
from domain.messages import Thread
from domain.patients import Patient
from domain.problems import Problem
from domain.quantities import Quantity
from domain.vitals import VitalSign
from events.ledger import Ledger
from projections.chart import decode_state

MANIFEST = "manifest.json"
CHARTLEDGER_EXTENSION = "https://chartledger.local/fhir/ehi-export"
SOURCE_FORMAT = "FHIR R4 Observation"
LAB_MEDIA_TYPE = "application/fhir+json"
MAX_FILE_BYTES = 512 * 1024 * 1024  # one NDJSON file read whole; bigger ones are refused
URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[!-~]+", re.ASCII)  # an identifier system: a URI
WHY_STOPPED = "stopped in the source record (FHIR import)"


@dataclass(frozen=True)
class Export:
    """An export's files in the manifest's order (else by name) and the source it names."""

    files: list[SourceFile]
    source: str | None


def read_export(folder: Path) -> Export:
    """The NDJSON files of a Bulk Data export folder: the manifest's ``output`` (and
    ``deleted`` is not read), else every ``*.ndjson`` in the folder. InvalidEntry (422, CLI
    exit 2) for a folder that is no export."""
    if not folder.is_dir():
        raise InvalidEntry(f"{folder} is not a folder")
    manifest_path = folder / MANIFEST
    names: list[str]
    source = None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_bytes())
            outputs = manifest["output"]
            names = [_file_name(o["url"]) for o in outputs]
        except (ValueError, KeyError, TypeError):
            raise InvalidEntry(f"{MANIFEST} is not a Bulk Data manifest (output[].url)") from None
        source = manifest_source(manifest)
    else:
        names = sorted(p.name for p in folder.glob("*.ndjson") if p.is_file())
    if not names:
        raise InvalidEntry(f"{folder} holds no NDJSON files to import")
    files = []
    for name in dict.fromkeys(names):
        path = folder / name
        if not path.is_file():
            raise InvalidEntry(f"the manifest names {name}, which the folder does not hold")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise InvalidEntry(f"{name} is larger than {MAX_FILE_BYTES} bytes: split the export")
        files.append(SourceFile(name, path.read_bytes()))
    return Export(files, source)


def _file_name(url: Any) -> str:
    """The file an output URL names, relative or absolute: its last path segment."""
    if type(url) is not str or not url:
        raise ValueError("url")
    name = urlsplit(url).path.rpartition("/")[2]
    if not name or name in (".", "..") or "\\" in name:
        raise ValueError("url")
    return name


def read_archive(data: bytes, name: str) -> Export:
    """An export sent over HTTP: a ZIP of the export's folder (manifest.json and NDJSON files
    at its top, or in one folder), else the body is one NDJSON file named ``name``."""
    if not data.startswith(b"PK\x03\x04"):
        return Export([SourceFile(name, data)], None)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = {i.filename.rpartition("/")[2]: i for i in archive.infolist() if not i.is_dir()}
        if sum(i.file_size for i in members.values()) > MAX_FILE_BYTES:
            raise InvalidEntry(f"the archive unpacks to more than {MAX_FILE_BYTES} bytes")
        source = None
        if MANIFEST in members:
            manifest = json.loads(archive.read(members[MANIFEST]))
            names = [_file_name(o["url"]) for o in manifest["output"]]
            source = manifest_source(manifest)
        else:
            names = sorted(n for n in members if n.endswith(".ndjson"))
        missing = [n for n in names if n not in members]
        if missing or not names:
            raise InvalidEntry("the archive holds no NDJSON files, or not those its manifest names")
        files = [SourceFile(n, archive.read(members[n])) for n in dict.fromkeys(names)]
    except InvalidEntry:
        raise
    except (zipfile.BadZipFile, ValueError, KeyError, TypeError):
        raise InvalidEntry("the body is not a ZIP of a Bulk Data export") from None
    return Export(files, source)


def manifest_source(manifest: dict[str, Any]) -> str | None:
    """The exporting system: a Chartledger export's origin, else the base of an absolute
    ``request`` URL (the server's FHIR base, before ``/$export`` or ``/Patient/...``)."""
    made = (manifest.get("extension") or {}).get(CHARTLEDGER_EXTENSION)
    if type(made) is dict and type(made.get("origin")) is str:
        return f"https://{made['origin']}"
    request = manifest.get("request")
    if type(request) is str and request.startswith(("https://", "http://")):
        base = request.split("?")[0].split("$export")[0].rstrip("/")
        return re.sub(r"/(?:Patient|Group/[^/]+|Patient/[^/]+)$", "", base)
    return None


def known_patients(
    ledger: Ledger, importer: Importer
) -> tuple[dict[tuple[str, str], UUID], set[str]]:
    """Every patient's identifiers (and MRN under the practice's MRN system) -> id, and MRNs."""
    importer.runner.catch_up_to()
    with ledger.db.read() as c:
        c.execute(
            "SELECT entry_id, patient_id, topic, first_recorded, state FROM chart_entries "
            "WHERE kind = 'Patient'"
        )
        rows = c.fetchall()
    mrn_system = f"https://{ledger.origin}/mrn"
    found: dict[tuple[str, str], UUID] = {}
    mrns: set[str] = set()
    for entry, patient, topic, first, state in rows:
        p = decode_state(topic, bytes(state), (entry, patient, first))
        mrns.add(p.mrn)
        found[(mrn_system, p.mrn)] = UUID(str(entry))
        for i in p.identifiers:
            found[(i["system"], i["value"])] = UUID(str(entry))
    return found, mrns


def source_of(export: Export, source: str | None) -> str:
    """The exporting system's URI: the one given, else the one the manifest names."""
    system = source or export.source
    if system is None:
        raise InvalidEntry("the export does not name its source system: give its URI (--source)")
    if URI.fullmatch(system) is None or len(system) > 2000:
        raise InvalidEntry("the source system must be an absolute URI (scheme:rest, no spaces)")
    return system


def import_fhir(
    importer: Importer,
    export: Export,
    source: str | None,
    source_name: str,
    accept_valid: bool = False,
) -> ImportReport:
    """Import ``export``; ``source`` (a URI) names the exporting system when the manifest
    does not (a given one wins)."""
    system = source_of(export, source)
    ledger = importer.ledger
    identifiers, mrns = known_patients(ledger, importer)

    def known(pairs: list[tuple[str, str]]) -> UUID | None:
        return next((identifiers[p] for p in pairs if p in identifiers), None)

    bulk = read_bulk(export.files, system, known, lambda mrn: mrn in mrns)
    parsed = bulk.parsed
    digest = ",".join(f.sha256 for f in export.files)
    keys = {
        id(a.item): ledger.private_id(
            "fhir-source", source_key(system, a.item.resource_type, a.item.resource_id)
        )
        for a in parsed.accepted
    }
    done = recorded(ledger, list(keys.values()))
    batch = _build(importer, parsed, system, keys, done)
    rejections = _decide("fhir", digest, parsed, accept_valid)
    return _summarize(
        importer, "fhir", source_name, digest, parsed, rejections, batch, accept_valid
    )


class _Builder:
    """The aggregates of the accepted resources, patients first (every other record names
    one), messages grouped into one thread per source thread."""

    def __init__(self, importer: Importer, system: str) -> None:
        self.importer = importer
        self.by = importer.by
        self.system = system
        self.patients: dict[str, UUID] = {}
        self.threads: dict[tuple[str, str, UUID], Thread] = {}
        self.now = datetime.now(UTC)
        self.mrns: set[str] = set()

    def record(self, item: Item) -> list[Aggregate]:
        f = item.fields
        if item.kind == "patient":
            if f["match"] is not None:
                self.patients[item.patient_ref or ""] = f["match"]
                return []
            if f["mrn"] in self.mrns:
                raise ChartError("its medical record number is another Patient's of this export")
            self.mrns.add(f["mrn"])
            patient = Patient.register(
                mrn=f["mrn"],
                given_name=f["given_name"],
                family_name=f["family_name"],
                birth_date=f["birth_date"],
                sex=f["sex"],
                identifiers=f["identifiers"],
            )
            self.patients[item.patient_ref or ""] = patient.id
            claim = MrnClaim(
                claim_id=self.importer.ledger.private_id("mrn", patient.mrn),
                patient_id=patient.id,
            )
            return [patient, claim]
        if item.kind == "practitioner":
            return []
        patient_id = self.patients[item.patient_ref or ""]
        return RECORDS[item.kind](self, item, patient_id)

    def lab(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        value, unit = f["value"]
        return [
            LabResult.receive(
                patient_id=patient_id,
                loinc_code=f["loinc_code"],
                test_name=f["test_name"],
                quantity=Quantity(value, unit),
                performing_lab=f["performing_lab"],
                source_format=SOURCE_FORMAT,
                source_message=item.raw,
                reference_range=f["reference_range"],
                reference_low=f["reference_low"],
                reference_high=f["reference_high"],
                abnormal_flag=f["abnormal_flag"],
                collected_at=f["collected_at"],
            )
        ]

    def vital(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        value, unit = f["value"]
        vital = VitalSign.measure(
            patient_id=patient_id,
            loinc_code=f["loinc_code"],
            name=f["name"],
            quantity=Quantity(value, unit),
            measured_at=f["measured_at"],
        )
        if f["in_error"]:
            vital.mark_in_error(by=self.by, reason="entered in error in the source record")
        return [vital]

    def problem(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        problem = Problem.record(
            patient_id=patient_id,
            description=f["description"],
            recorded_by=self.by,
            code_system=f["code_system"],
            code=f["code"],
            onset=f["onset"],
        )
        if f["resolved"]:
            problem.resolve(resolved_by=self.by, resolved_on=f["resolved_on"])
        return [problem]

    def medication(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        value, unit = f["dose"]
        med = Medication.start(
            patient_id=patient_id,
            drug=f["drug"],
            dose=Quantity(value, unit),
            started_on=f["started_on"],
            prescriber_id=self.by,
            code_system=f["code_system"],
            code=f["code"],
            route=f["route"],
            frequency=f["frequency"],
        )
        if f["stopped_on"] is not None:
            med.stop(stopped_on=f["stopped_on"], stopped_by=self.by, reason=WHY_STOPPED)
        return [med]

    def allergy(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        allergy = Allergy.record(
            patient_id=patient_id,
            substance=f["substance"],
            recorded_by=self.by,
            code_system=f["code_system"],
            code=f["code"],
            reaction=f["reaction"],
            severity=f["severity"],
        )
        if f["inactive"]:
            allergy.inactivate(by=self.by, reason="inactive in the source record")
        return [allergy]

    def document(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        return [
            Document.store(
                content=f["content"],
                sha256=hashlib.sha256(f["content"]).hexdigest(),
                original_filename=f["original_filename"],
                media_type=f["media_type"],
                uploader_id=self.by,
                patient_id=patient_id,
                source_created=f["source_created"],
            )
        ]

    def encounter(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        participants = [
            {**p, "individual": self.named(p["individual"])} if "individual" in p else p
            for p in f["participants"]
        ]
        return [
            Encounter.import_record(
                patient_id=patient_id,
                source=self.system,
                resource_id=item.resource_id,
                status=f["status"],
                encounter_class=f["encounter_class"],
                types=f["types"],
                period_start=f["period_start"],
                period_end=f["period_end"],
                participants=participants,
                reasons=f["reasons"],
                recorded_by=self.by,
            )
        ]

    def named(self, party: dict[str, str]) -> dict[str, str]:
        """A party as the source named it, and the patient here when it names a patient of
        the import (so the export can reference them)."""
        ident = reference_id(party, "Patient")
        local = self.patients.get(f"Patient/{ident}") if ident is not None else None
        return party if local is None else {**party, "patient": str(local)}

    def message(self, item: Item, patient_id: UUID) -> list[Aggregate]:
        f = item.fields
        key = (item.kind, item.thread or item.resource_id, patient_id)
        thread = self.threads.get(key)
        new = thread is None
        if thread is None:
            topic = f["topic"] or "(no subject)"
            kind = THREAD_KINDS[item.kind]
            thread = Thread.start(kind=kind, topic=topic, patient_ids=[patient_id])
            self.threads[key] = thread
        if item.kind == "communication":
            thread.import_communication(
                source=self.system,
                resource_id=item.resource_id,
                status=f["status"],
                topic=f["topic"],
                sent=f["sent"],
                received=f["received"],
                sender=None if f["sender"] is None else self.named(f["sender"]),
                recipients=[self.named(r) for r in f["recipients"]],
                payload=f["parts"],
                category=f["category"],
                medium=f["medium"],
                reason=f["reason"],
            )
        elif item.kind == "email":
            thread.ingest_email(raw=f["raw"], received_at=f["received_at"] or self.now)
        else:
            thread.ingest_sms(
                from_number=f["from_number"],
                to_number=f["to_number"],
                body=f["body"],
                sent_at=f["sent_at"],
                provider_metadata=f["provider_metadata"],
            )
        return [thread] if new else []


RECORDS: dict[str, Callable[[_Builder, Item, UUID], list[Aggregate]]] = {
    "lab": _Builder.lab,
    "vital": _Builder.vital,
    "problem": _Builder.problem,
    "medication": _Builder.medication,
    "allergy": _Builder.allergy,
    "document": _Builder.document,
    "email": _Builder.message,
    "sms": _Builder.message,
    "communication": _Builder.message,
    "encounter": _Builder.encounter,
}
# The thread each kind of message goes to: a Communication that is neither an email nor an
# SMS is kept as the source wrote it, in a thread of its own kind.
THREAD_KINDS = {"email": "email", "sms": "sms", "communication": "imported"}


def _build(
    importer: Importer,
    parsed: Parsed[Item],
    system: str,
    keys: dict[int, UUID],
    done: set[UUID],
) -> _Batch:
    """Every accepted resource's record and source record; a resource recorded by an earlier
    import is passed over (its patient still found, for the resources naming it); a record the
    domain refuses becomes a rejection."""
    builder = _Builder(importer, system)
    batch = _Batch(aggregates=[], created=[])
    kept = []
    # Patients first: every other record names its patient's id.
    ordered = sorted(parsed.accepted, key=lambda a: a.item.kind != "patient")
    for count, accepted in enumerate(ordered, start=1):
        item = accepted.item
        key = keys[id(item)]
        if key in done:
            if item.kind == "patient":
                earlier = importer.ledger.repository.get(key)
                builder.patients[item.patient_ref or ""] = earlier.record_id
            kept.append(accepted)
            continue
        if (
            item.patient_ref is not None
            and item.kind != "patient"
            and (item.patient_ref not in builder.patients)
        ):
            parsed.rejections.append(
                Rejection(accepted.location, (f"its patient ({item.patient_ref}) is rejected",))
            )
            continue
        try:
            made = builder.record(item)
            record_id = made[0].id if made else None
            if item.kind == "patient":
                record_id = builder.patients[item.patient_ref or ""]
            elif item.kind in THREAD_KINDS:
                record_id = builder.threads[
                    (
                        item.kind,
                        item.thread or item.resource_id,
                        builder.patients[item.patient_ref or ""],
                    )
                ].id
            source = SourceResource.record(
                stream_id=key,
                source=system,
                resource_type=item.resource_type,
                resource_id=item.resource_id,
                file=item.file,
                line=item.line,
                file_sha256=item.file_sha256,
                resource=item.raw,
                times=item.times,
                record_id=record_id,
                patient_id=None if item.patient_ref is None else builder.patients[item.patient_ref],
                imported_by=importer.by,
                practitioners=item.practitioners,
            )
        except ChartError as e:
            parsed.rejections.append(Rejection(accepted.location, (str(e),)))
            continue
        kept.append(accepted)
        batch.aggregates.extend(made)
        batch.aggregates.append(source)
        batch.created.extend(a.id for a in made if not isinstance(a, MrnClaim))
        _tick(importer, count, len(ordered))
    parsed.accepted[:] = kept
    return batch
