"""One pass over the log, in order, folding the events of the exported patients into FHIR
resources (docs/EHI_EXPORT.md §6).

Each event's audit row becomes an AuditEvent at once, and each message a Communication; the
records that change over time (a patient, a note and its addenda, a lab result and its
corrections, ...) are replayed with their own aggregates' code and become resources at the end,
as they stood at the export's log size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from domain.allergies import Allergy
from domain.amendments import AmendmentRequest
from domain.appointments import Appointment
from domain.documents import Document
from domain.encounters import Encounter
from domain.labs import LabResult
from domain.medications import Medication
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from domain.problems import Problem
from domain.vitals import VitalSign
from projections.audit import audit_row
from projections.chart import CHART_MODULES
from projections.fhir import (
    allergies,
    appointments,
    communications,
    conditions,
    documents,
    imported,
    medications,
    observations,
    patients,
    provenance,
)
from projections.fhir.audit_events import AuditLines
from projections.fhir.common import Context, Tracked
from projections.runner import Entry

Resource = dict[str, Any]


class Encoded(NamedTuple):
    """A resource already written as its NDJSON line (without the line end)."""

    resource_type: str
    line: str


# The modules whose records are replayed; events of any other module become AuditEvents only.
FOLDED = CHART_MODULES | {"domain.appointments", "domain.messages"}
# Records whose resources show their history keep their events (the others keep state only).
WITH_HISTORY = {"domain.labs", "domain.amendments", "domain.appointments"}


class Fold:
    """Feed it every entry of the exported range in log order (``add``), then ``finish``.

    ``allowed`` says whether a ``patient:<id>`` subject is in the export; events concerning no
    allowed patient are skipped, and other patients are never named in what comes out.
    """

    def __init__(self, context: Context, allowed: Callable[[str], bool]) -> None:
        self.context = context
        self.allowed = allowed
        self.audit_lines = AuditLines(context)
        self.records: dict[str, Tracked] = {}
        self.broken: set[str] = set()  # streams whose replay failed (e.g. partly disposed of)
        # The patients with a Patient resource in the export; any other patient (their record
        # disposed of) is named by identifier, as no reference to them could resolve.
        self.patients: set[str] = set()

    def add(self, entry: Entry) -> list[Resource | Encoded]:
        header = entry.header
        named = [s for s in header.subjects if s.startswith("patient:")]
        shown = [s.removeprefix("patient:") for s in named if self.allowed(s)]
        if not shown:
            return []
        whole = len(shown) == len(named)
        module = header.type.partition(":")[0]
        # Replayed first, so that a patient's own registration event already knows whether
        # the patient has a Patient resource to reference.
        folded = entry.event is not None and module in FOLDED
        record = self._replay(module, entry) if folded else None
        absent = [p for p in shown if p not in self.patients]
        audit = self.audit_lines.line(audit_row(entry), header.stream, shown, whole, absent)
        ready: list[Resource | Encoded] = [Encoded("AuditEvent", audit)]
        if record is not None and isinstance(record.state, Thread) and header.version > 1:
            message = communications.message(
                record.state, entry.event, header.recorded, self.allowed, self.patients
            )
            if message is not None:
                ready.append(message)
        return ready

    def _replay(self, module: str, entry: Entry) -> Tracked | None:
        header, event = entry.header, entry.event
        stream = header.stream
        if stream in self.broken:
            return None
        record = self.records.get(stream)
        try:
            state = event.mutate(None if record is None else record.state)
        except Exception:
            # A stream whose earlier payloads were disposed of cannot be replayed: its events
            # stay in the AuditEvents and the native export, and it has no other resource.
            self.broken.add(stream)
            self.records.pop(stream, None)
            self.patients.discard(stream)
            return None
        if isinstance(state, Patient):
            self.patients.add(stream)
        if record is None:
            record = Tracked(state, header.recorded, header.recorded, [])
            self.records[stream] = record
        record.state = state
        record.last_recorded = header.recorded
        if module in WITH_HISTORY and header.version > 1:
            record.events.append((header, event))
        return record

    def finish(self) -> Iterator[Resource]:
        """The resources of every replayed record, as it stands now."""
        requests = [r for r in self.records.values() if isinstance(r.state, AmendmentRequest)]
        answered = {
            str(e.amendment_id): r.id
            for r in requests
            for h, e in r.events
            if h.type.endswith(".Accepted")
        }
        made: set[str] = set()
        practice = self.context.practice_id
        for record in self.records.values():
            yield from self._resources(record, answered, made)
        for request in requests:
            for header, event in request.events:
                name = header.type.rpartition(".")[2]
                if name == "Denied" or (name == "Accepted" and str(event.amendment_id) not in made):
                    yield provenance.decision_provenance(request, header, event, practice)

    def _resources(
        self, record: Tracked, answered: dict[str, str], made: set[str]
    ) -> Iterator[Resource]:
        state = record.state
        practice = self.context.practice_id
        if isinstance(state, Patient):
            yield patients.patient(record, self.context)
        elif isinstance(state, Note):
            yield from documents.note_references(record)
            for addendum in state.addenda:
                key = str(addendum["addendum_id"])
                made.add(key)
                asked = addendum["amendment_request_id"]
                request = str(asked) if asked is not None else answered.get(key)
                yield provenance.addendum_provenance(record, addendum, request, practice)
        elif isinstance(state, LabResult):
            yield observations.lab_observation(record)
            if state.source_message is not None:  # else the source is a Document's Binary
                yield observations.source_binary(record)
            for header, event in record.events:
                if header.type.endswith(".Corrected"):
                    key = str(event.correction_id)
                    made.add(key)
                    asked = event.amendment_request_id
                    request = str(asked) if asked is not None else answered.get(key)
                    yield provenance.correction_provenance(record, header, event, request, practice)
        elif isinstance(state, VitalSign):
            yield observations.vital_observation(record)
        elif isinstance(state, Problem):
            yield conditions.condition(record)
        elif isinstance(state, Medication):
            yield medications.medication_request(record)
        elif isinstance(state, Allergy):
            yield allergies.allergy_intolerance(record)
        elif isinstance(state, Document):
            yield documents.document_reference(record)
        elif isinstance(state, Appointment):
            yield appointments.appointment(record)
            found = appointments.encounter(record, self.context)
            if found is not None:
                yield found
        elif isinstance(state, Encounter):
            yield imported.imported_encounter(record, self.patients)
        elif isinstance(state, AmendmentRequest):
            yield from communications.amendment_letters(record)
