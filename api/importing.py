"""Imports, applied: parse and check the whole file, then write every accepted record and the
import's summary, or nothing (docs/IMPORTS.md §1). Patients, email and SMS go in ONE ledger
transaction; labs in transactions of at most ``LAB_BATCH`` results, the summary last, so an import
of 20,000 results never holds the store's writer lock for more than a moment (§4).

A file with any rejection writes nothing (``ImportRejected``: 422, CLI exit 2) unless
``accept_valid`` is given; then the accepted items alone are written, still in one transaction,
and the report lists the rejections. A file with nothing accepted never writes anything.
Existing MRNs are read from the chart view, caught up first. For labs and messages, a user who
is not an owner may write only to the charts of patients they have a care relationship with.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from api.care import has_care_relationship
from domain.access import Refusal
from domain.documents import Document
from domain.errors import ChartError, NotPermitted
from domain.identifiers import MrnClaim
from domain.imports import csv_patients, email, hl7_labs, sms
from domain.imports.report import ImportRejected, ImportReport, Parsed, Rejection
from domain.imports.summary import ImportRun
from domain.labs import LabResult
from domain.messages import Thread
from domain.patients import Patient
from domain.quantities import Quantity
from events.ledger import Ledger
from projections.chart import decode_state
from projections.runner import Runner

T = TypeVar("T")
Progress = Callable[[int, int], None]
# Lab results per transaction: a few hundred milliseconds of writing at most, so a chart read
# waiting for the writer lock between two of them answers well within a second.
LAB_BATCH = 50
# Results one lab import takes: two and a half times issue 17's 20,000, about a minute of
# writing. A bigger file is refused whole (422 import-rejected, CLI exit 2): split it.
MAX_LAB_RESULTS = 50_000
# Results from which an import on SQLite settles the store when it ends: the views take in its
# results and the WAL, up to 40 MB by then, is copied back and cut (events/db.py), so the store
# grows by what it keeps and not by a WAL as big again (issue 17). PostgreSQL has no such file:
# there the follower takes the results in as before, and the request holds no views' fold.
SETTLE_AFTER = 1_000
RECORDED_CHUNK = 500  # ids asked for in one query: well under SQLite's 32,766 parameters


@dataclass(frozen=True)
class Importer:
    """Who imports, how their writes are attributed, and where progress goes."""

    ledger: Ledger
    runner: Runner
    by: UUID
    is_owner: bool
    acting: Callable[[], AbstractContextManager[Any]]
    progress: Progress | None = None

    def may_write_to(self, patient_id: UUID) -> bool:
        if self.is_owner:
            return True
        return has_care_relationship(self.ledger, self.by, patient_id)

    def refused(self, patient_id: UUID, category: str) -> None:
        """Record the importer's refused write to the patient's chart (issue 17: every access
        decision is an audit row, under the importer and the patient)."""
        refusal = Refusal.record(
            user_id=self.by,
            patient_id=patient_id,
            action="create",
            data_category=category,
            reason="no-care-relationship",
            at=datetime.now(UTC),
        )
        with self.acting():
            self.ledger.save(refusal)


def patients_by_mrn(ledger: Ledger, runner: Runner) -> dict[str, UUID]:
    """Every patient's MRN -> id, from the chart view (caught up to the log first)."""
    runner.catch_up_to()
    with ledger.db.read() as c:
        c.execute(
            "SELECT entry_id, patient_id, topic, first_recorded, state FROM chart_entries "
            "WHERE kind = 'Patient'"
        )
        rows = c.fetchall()
    return {
        decode_state(topic, bytes(state), (entry, patient, first)).mrn: UUID(entry)
        for entry, patient, topic, first, state in rows
    }


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def import_patients(
    importer: Importer,
    data: bytes,
    mapping: csv_patients.ColumnMap,
    source_name: str,
    accept_valid: bool = False,
) -> ImportReport:
    existing = patients_by_mrn(importer.ledger, importer.runner)
    parsed = csv_patients.parse_patients(data, mapping, existing)

    def build(row: csv_patients.PatientRow) -> list[Aggregate]:
        identifiers = [{"system": s, "value": v} for s, v in row.identifiers]
        patient = Patient.register(
            mrn=row.mrn,
            given_name=row.given_name,
            family_name=row.family_name,
            birth_date=row.birth_date,
            sex=row.sex,
            identifiers=identifiers,
        )
        # The claim makes the store refuse the whole import if another registration took
        # one of these MRNs after the check above.
        claim_id = importer.ledger.private_id("mrn", patient.mrn)
        return [patient, MrnClaim(claim_id=claim_id, patient_id=patient.id)]

    batch = _build(importer, parsed, build)
    return _finish(importer, "patients", source_name, sha256(data), parsed, batch, accept_valid)


def import_labs(
    importer: Importer, data: bytes, source_name: str, accept_valid: bool = False
) -> ImportReport:
    """Each accepted message is stored once, as a Document; each of its results names that
    Document and its segment (never a copy of the message, which made an import's size grow
    with the square of its results)."""
    patients = patients_by_mrn(importer.ledger, importer.runner)
    parsed = hl7_labs.parse_lab_messages(data, patients, MAX_LAB_RESULTS)
    _refuse_without_care(importer, parsed, lambda m: m.patient_id, "PID-3", "labs")
    documents = _lab_sources(importer, parsed, source_name)
    digest = sha256(data)
    rejections = _decide("labs", digest, parsed, accept_valid)
    created: list[UUID] = []
    links: list[dict[str, Any]] = []
    done, total = 0, sum(len(a.item.results) for a in parsed.accepted)
    for accepted, document in zip(parsed.accepted, documents, strict=True):
        message = accepted.item
        lab_ids = [_lab_id(importer.ledger, document.id, r) for r in message.results]
        # A message stored before (the same bytes for the same patient: an import stopped
        # part-way, or the file sent twice) is finished, not doubled: what is there is passed over.
        there = recorded(importer.ledger, [document.id, *lab_ids])
        first: list[Aggregate] = [] if document.id in there else [document]
        for start in range(0, len(message.results), LAB_BATCH):
            labs = [
                _lab(message, document.id, r, lab_id)
                for r, lab_id in zip(
                    message.results[start : start + LAB_BATCH],
                    lab_ids[start : start + LAB_BATCH],
                    strict=True,
                )
                if lab_id not in there
            ]
            created.extend(a.id for a in _save_unrecorded(importer, [*first, *labs]))
            first = []
            done += min(LAB_BATCH, len(message.results) - start)
            _tick(importer, done, total)
        links.append(
            {
                "location": accepted.location,
                "document_id": document.id,
                "document_sha256": document.sha256,
                "lab_ids": lab_ids,
            }
        )
    batch = _Batch(aggregates=[], created=created, links=links)
    report = _summarize(
        importer, "labs", source_name, digest, parsed, rejections, batch, accept_valid
    )
    if total >= SETTLE_AFTER and importer.ledger.db.dialect == "sqlite":
        importer.runner.catch_up_to()
        importer.ledger.db.shrink_wal()
    return report


def _lab_sources(
    importer: Importer, parsed: Parsed[hl7_labs.LabMessage], source_name: str
) -> list[Document]:
    """The Document of every accepted message, each message's results checked by the domain
    first (built and dropped: holding 20,000 of them until the write is what is not wanted); a
    message the domain refuses becomes a rejection, so nothing of it is written."""
    documents, kept = [], []
    for accepted in parsed.accepted:
        message = accepted.item
        digest = sha256(message.raw)
        try:
            document = Document.store(
                id=importer.ledger.private_id("hl7-message", f"{message.patient_id} {digest}"),
                content=message.raw,
                sha256=digest,
                original_filename=f"{source_name} {message.control_id}.hl7",
                media_type=hl7_labs.MEDIA_TYPE,
                uploader_id=importer.by,
                patient_id=message.patient_id,
            )
            for result in message.results:
                _lab(message, document.id, result)
        except ChartError as e:
            parsed.rejections.append(Rejection(accepted.location, (str(e),)))
            continue
        kept.append(accepted)
        documents.append(document)
    parsed.accepted[:] = kept
    return documents


def _lab_id(ledger: Ledger, document_id: UUID, r: hl7_labs.LabItem) -> UUID:
    """A result's id: the same whenever its message is imported (and no one else's to guess)."""
    return ledger.private_id("hl7-result", f"{document_id} {r.index}")


def _lab(
    message: hl7_labs.LabMessage,
    document_id: UUID,
    r: hl7_labs.LabItem,
    lab_id: UUID | None = None,
) -> LabResult:
    return LabResult.receive(
        id=lab_id,
        patient_id=message.patient_id,
        loinc_code=r.loinc_code,
        test_name=r.test_name,
        quantity=Quantity(r.value, r.unit),
        performing_lab=r.performing_lab,
        source_format=hl7_labs.SOURCE_FORMAT,
        source_document_id=document_id,
        source_segment=r.index,
        source_set_id=r.set_id,
        reference_range=r.reference_range,
        reference_low=r.reference_low,
        reference_high=r.reference_high,
        abnormal_flag=r.abnormal_flag,
        collected_at=r.collected_at,
    )


def import_email(
    importer: Importer,
    files: list[tuple[str, bytes]],
    patient_id: UUID,
    accept_valid: bool = False,
) -> ImportReport:
    check_patient(importer, patient_id, "messages")
    parsed = email.parse_emails(files)
    items = [a.item for a in parsed.accepted]
    received_at = datetime.now(UTC)
    threads = []
    for group in email.threads(items):
        thread = Thread.start(kind="email", topic=items[group[0]].topic, patient_ids=[patient_id])
        for index in group:
            thread.ingest_email(raw=items[index].raw, received_at=received_at)
            _tick(importer, index + 1, len(items))
        threads.append(thread)
    batch = _Batch(aggregates=list(threads), created=[t.id for t in threads])
    names = ", ".join(name for name, _ in files)
    digests = ",".join(sha256(data) for _, data in files)
    return _finish(importer, "email", names, digests, parsed, batch, accept_valid)


def import_sms(
    importer: Importer,
    data: bytes,
    source_name: str,
    patient_id: UUID,
    accept_valid: bool = False,
) -> ImportReport:
    check_patient(importer, patient_id, "messages")
    parsed = sms.parse_sms_export(data)
    threads: dict[str, Thread] = {}
    for done, accepted in enumerate(parsed.accepted, start=1):
        item = accepted.item
        if item.address not in threads:
            threads[item.address] = Thread.start(
                kind="sms", topic=f"SMS with {item.address}", patient_ids=[patient_id]
            )
        threads[item.address].ingest_sms(
            from_number=item.from_number,
            to_number=item.to_number,
            body=item.body,
            sent_at=item.sent_at,
            provider_metadata=item.metadata,
        )
        _tick(importer, done, len(parsed.accepted))
    batch = _Batch(aggregates=list(threads.values()), created=[t.id for t in threads.values()])
    return _finish(importer, "sms", source_name, sha256(data), parsed, batch, accept_valid)


def check_patient(importer: Importer, patient_id: UUID, category: str) -> None:
    """The patient exists (else 404) and the importer may write to their chart (else 403)."""
    patient = importer.ledger.repository.get(patient_id)
    if not isinstance(patient, Patient):
        raise ChartError(f"{patient_id} is not a patient")
    importer.runner.catch_up_to()
    if not importer.may_write_to(patient_id):
        importer.refused(patient_id, category)
        raise NotPermitted(
            f"no care relationship with patient {patient_id}: an owner may import for them"
        )


def _refuse_without_care(
    importer: Importer,
    parsed: Parsed[T],
    patient_of: Callable[[T], UUID],
    naming: str,
    category: str,
) -> None:
    if importer.is_owner:
        return
    kept = []
    refused: set[UUID] = set()
    for accepted in parsed.accepted:
        patient_id = patient_of(accepted.item)
        if importer.may_write_to(patient_id):
            kept.append(accepted)
        else:
            if patient_id not in refused:  # one refusal per patient, however many messages
                refused.add(patient_id)
                importer.refused(patient_id, category)
            reason = f"no care relationship with the patient {naming} names (an owner may import)"
            parsed.rejections.append(Rejection(accepted.location, (reason,)))
    parsed.accepted[:] = kept


@dataclass
class _Batch:
    aggregates: list[Aggregate]
    created: list[UUID]
    links: list[dict[str, Any]] = field(default_factory=list)


def _build(importer: Importer, parsed: Parsed[T], build: Callable[[T], list[Aggregate]]) -> _Batch:
    """The aggregates of every accepted item; an item the domain refuses becomes a rejection
    (its message names fields, never values), so nothing half-built is ever saved."""
    batch = _Batch(aggregates=[], created=[])
    kept = []
    for done, accepted in enumerate(parsed.accepted, start=1):
        try:
            aggregates = build(accepted.item)
        except ChartError as e:
            parsed.rejections.append(Rejection(accepted.location, (str(e),)))
            continue
        kept.append(accepted)
        batch.aggregates.extend(aggregates)
        # The records made; an MRN claim only guards its patient's registration.
        batch.created.extend(a.id for a in aggregates if not isinstance(a, MrnClaim))
        _tick(importer, done, len(parsed.accepted))
    parsed.accepted[:] = kept
    return batch


def _tick(importer: Importer, done: int, total: int) -> None:
    if importer.progress is not None:
        importer.progress(done, total)


def _finish(
    importer: Importer,
    kind: str,
    source_name: str,
    source_sha256: str,
    parsed: Parsed[Any],
    batch: _Batch,
    accept_valid: bool,
) -> ImportReport:
    rejections = _decide(kind, source_sha256, parsed, accept_valid)
    return _summarize(
        importer, kind, source_name, source_sha256, parsed, rejections, batch, accept_valid
    )


def _decide(
    kind: str, source_sha256: str, parsed: Parsed[Any], accept_valid: bool
) -> tuple[Rejection, ...]:
    """The rejections in file order; ``ImportRejected`` if nothing is to be written."""
    if parsed.items == 0:
        parsed.reject("file", "holds nothing to import")
    rejections = tuple(sorted(parsed.rejections, key=_order))
    if not parsed.accepted or (rejections and not accept_valid):
        raise ImportRejected(
            ImportReport(
                kind=kind,
                source_sha256=source_sha256,
                items=parsed.items,
                accepted=len(parsed.accepted),
                rejections=rejections,
                written=False,
            )
        )
    return rejections


def _summarize(
    importer: Importer,
    kind: str,
    source_name: str,
    source_sha256: str,
    parsed: Parsed[Any],
    rejections: tuple[Rejection, ...],
    batch: _Batch,
    accept_valid: bool,
) -> ImportReport:
    """Save the batch's aggregates (if any are left to save) with the import's summary."""
    summary = ImportRun.complete(
        kind=kind,
        source_name=source_name or "(unnamed)",
        source_sha256=source_sha256,
        items=parsed.items,
        rejections=[str(r) for r in rejections],
        created=batch.created,
        accept_valid=accept_valid,
        by=importer.by,
        links=batch.links,
    )
    with importer.acting():
        importer.ledger.save(*batch.aggregates, summary)
    return ImportReport(
        kind=kind,
        source_sha256=source_sha256,
        items=parsed.items,
        accepted=len(parsed.accepted),
        rejections=rejections,
        written=True,
        import_id=summary.id,
        created=tuple(batch.created),
    )


def _save_unrecorded(importer: Importer, aggregates: list[Aggregate]) -> list[Aggregate]:
    """Save those of ``aggregates`` the store does not hold; return what was saved. Another
    import of the same message at the same instant (its ids are the same) may have written
    some of them since this one looked: the store refuses the batch, and what it holds by then
    is passed over. A refusal that no id explains is not this race, and is raised."""
    while aggregates:
        try:
            with importer.acting():
                importer.ledger.save(*aggregates)
            return aggregates
        except IntegrityError:
            there = recorded(importer.ledger, [a.id for a in aggregates])
            if not there:
                raise
            aggregates = [a for a in aggregates if a.id not in there]
    return []


def recorded(ledger: Ledger, ids: list[UUID]) -> set[UUID]:
    """The aggregates among ``ids`` the store holds already."""
    found: set[UUID] = set()
    sqlite = ledger.db.dialect == "sqlite"
    for start in range(0, len(ids), RECORDED_CHUNK):
        chunk = ids[start : start + RECORDED_CHUNK]
        marks = ", ".join("?" * len(chunk))
        with ledger.db.read() as c:
            c.execute(
                f"SELECT originator_id FROM stored_events WHERE originator_id IN ({marks}) "
                "AND originator_version = 1",
                [i.hex if sqlite else i for i in chunk],
            )
            found.update(UUID(str(row[0])) for row in c.fetchall())
    return found


def _order(rejection: Rejection) -> int:
    """File order: ``row 12`` after ``row 9`` (a stable sort: unnumbered ones stay as found)."""
    words = rejection.location.split()
    return next((int(w) for w in words[1:2] if w.isdigit()), 0)
