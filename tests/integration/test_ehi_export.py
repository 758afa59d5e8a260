"""The EHI export on SQLite and PostgreSQL: every resource of a patient with every kind of
record validates against fhir.resources' R4B models, quantities keep their digits and units,
every amendment has a Provenance, the export is recorded before anything is written, and the
native records let a recipient check every commitment and the patient's completeness."""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgpack
import pytest

from domain import appointments as scheduling
from domain.access import Access
from domain.allergies import Allergy
from domain.amendments import AmendmentRequest
from domain.base import user_subject
from domain.documents import Document
from domain.labs import LabResult
from domain.medications import Medication
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from domain.problems import Problem
from domain.quantities import Quantity
from domain.users import User
from domain.vitals import VitalSign
from events.context import acting
from events.ledger import Ledger
from projections.access_report import patient_access_report
from projections.audit import audit_report
from projections.ehi_export import ExportRequest, OutputExists, export
from projections.reads import PatientNotFound, Reader
from projections.rebuild import runner_for
from verify.canonical import decode, encode
from verify.chain import CompletenessProof, ProvenLeaf, verify_completeness
from verify.checkpoint import parse_note
from verify.hashing import commitment, event_digest
from verify.merkle import root_hash
from verify.records import parse_header, parse_leaf

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HL7 = b"MSH|^~\\&|LAB|ACME\rOBX|1|NM|2345-7^Glucose^LN||5.2|mg/dL|3.9-5.5\r"
EMAIL = (
    b"From: Pat Example <pat@example.org>\r\nTo: clinic@example.org\r\n"
    b"Subject: refill\r\nDate: Mon, 2 Nov 2026 08:00:00 +0000\r\n\r\nPlease refill.\r\n"
)
PDF = b"%PDF-1.4\n% a small made-up document\n"


@dataclass
class Story:
    """A patient with every kind of record, and the ids the tests look for."""

    patient: UUID
    other_patient: UUID
    clinician: UUID
    note: UUID
    addendum: UUID
    lab: UUID
    corrected_lab: UUID
    correction: UUID
    accepted: UUID
    denied: UUID
    document: UUID


def tell_story(ledger: Ledger) -> Story:
    """Build the record through the domain, as the API would, acting as a clinician."""
    clinician_user = User.register(name="Casey Clinician", role="clinician")
    clinician = clinician_user.id
    patient = Patient.register(
        mrn="MRN-0001",
        given_name="Pat",
        family_name="Example",
        birth_date=date(1970, 5, 17),
        sex="female",
        identifiers=[{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "999-00-1234"}],
    )
    other = Patient.register(
        mrn="MRN-0002", given_name="Sam", family_name="Other", birth_date=date(1980, 1, 1),
        sex="male",
    )  # fmt: skip
    pid = patient.id
    note = Note.draft(patient_id=pid, author_id=clinician, kind="progress", text="Seen today.")
    note.sign(signed_by=clinician, at=AT)
    lab = LabResult.receive(
        patient_id=pid, loinc_code="2160-0", test_name="Creatinine",
        quantity=Quantity("5.2", "mg/dL"), performing_lab="ACME Lab", source_message=HL7,
        source_format="HL7v2", reference_range="0.6-1.3", reference_low="0.6",
        reference_high="1.3", abnormal_flag="H", collected_at="20261102083000",
    )  # fmt: skip
    corrected = LabResult.receive(
        patient_id=pid, loinc_code="2345-7", test_name="Glucose",
        quantity=Quantity("+0099.50", "mg/dL"), performing_lab="ACME Lab", source_message=HL7,
        source_format="HL7v2", collected_at="2026-11-02T08:30:00Z",
    )  # fmt: skip
    vital = VitalSign.measure(
        patient_id=pid, loinc_code="8310-5", name="Body temperature",
        quantity=Quantity("37.20", "Cel"), measured_at=AT, measured_by=clinician,
    )  # fmt: skip
    problem = Problem.record(
        patient_id=pid, description="Hypertension", recorded_by=clinician,
        code_system="SNOMED CT", code="38341003", onset="spring 2019",
    )  # fmt: skip
    problem.resolve(resolved_by=clinician, resolved_on=date(2026, 10, 1))
    med = Medication.start(
        patient_id=pid, drug="Lisinopril", dose=Quantity("10", "mg"), started_on=date(2026, 1, 5),
        prescriber_id=clinician, code_system="RxNorm", code="314076", route="oral",
        frequency="daily",
    )  # fmt: skip
    med.change_dose(
        dose=Quantity("20", "mg"), changed_on=date(2026, 3, 1), changed_by=clinician,
        reason="BP above goal",
    )  # fmt: skip
    allergy = Allergy.record(
        patient_id=pid, substance="Penicillin", recorded_by=clinician, reaction="hives",
        severity="severe",
    )  # fmt: skip
    document = Document.store(
        content=PDF, sha256=hashlib.sha256(PDF).hexdigest(), original_filename="referral.pdf",
        media_type="application/pdf", uploader_id=clinician, patient_id=pid,
        source_created="D:20261101",
    )  # fmt: skip
    email = Thread.start(kind="email", topic="Refill", patient_ids=[pid])
    email.ingest_email(raw=EMAIL, received_at=AT)
    sms = Thread.start(kind="sms", topic="Reminder", patient_ids=[pid])
    sms.ingest_sms(
        from_number="+15550100", to_number="+15550199", body="See you Monday",
        sent_at="2026-11-01 17:00", provider_metadata={"price": Decimal("0.0075"), "segments": 1},
    )  # fmt: skip
    secure = Thread.start(
        kind="secure", topic="Results", patient_ids=[pid, other.id], user_ids=[clinician]
    )
    secure.post(sender=user_subject(clinician), body="Your results are in.", at=AT)
    with acting(user_subject(clinician), "test"):
        ledger.save(clinician_user)
        ledger.save(patient, other, note, lab, corrected, vital, problem, med, allergy, document)
        ledger.save(email, sms, secure)

    accepted = AmendmentRequest.request(
        patient_id=pid, target_type="note", target_id=note.id, requested_change="Add the BP.",
        reason="It was measured.", received_at=AT,
    )  # fmt: skip
    addendum = note.add_addendum(
        text="BP 128/82.", reason="Patient's amendment request", author_id=clinician,
        at=AT + timedelta(days=1), amendment_request_id=accepted.id,
    )  # fmt: skip
    accepted.accept(decided_by=clinician, at=AT + timedelta(days=1), amendment_id=addendum)
    denied = AmendmentRequest.request(
        patient_id=pid, target_type="lab_result", target_id=lab.id,
        requested_change="Remove the creatinine.", reason="I disagree.", received_at=AT,
    )  # fmt: skip
    denied.deny(
        decided_by=clinician, at=AT + timedelta(days=2), basis="accurate_and_complete",
        denial_text="The result is accurate and complete.",
    )  # fmt: skip
    denied.file_disagreement(statement="I still disagree.", at=AT + timedelta(days=3))
    denied.file_rebuttal(author_id=clinician, text="We stand by it.", at=AT + timedelta(days=4))
    correction = corrected.correct(
        quantity=Quantity("99.5", "mg/dL"), reason="transcription", corrects_version=1,
        corrected_by=clinician,
    )  # fmt: skip
    start = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)
    days = scheduling.provider_days(
        ledger.repository.get, clinician, (start, start + timedelta(minutes=30))
    )
    booked = scheduling.book(
        days.values(), patient_id=pid, provider_id=clinician, start=start,
        end=start + timedelta(minutes=30), reason="follow-up",
    )  # fmt: skip
    booked[0].check_in(at=start)
    read = Access.record(
        user_id=clinician, patient_id=pid, action="access", data_category="chart",
        purpose_of_use="TREAT", at=AT,
    )  # fmt: skip
    with acting(user_subject(clinician), "test"):
        ledger.save(note, accepted, denied, corrected, *booked, read)
    ledger.checkpointer.issue()
    return Story(
        patient=pid, other_patient=other.id, clinician=clinician, note=note.id,
        addendum=addendum, lab=lab.id, corrected_lab=corrected.id, correction=correction,
        accepted=accepted.id, denied=denied.id, document=document.id,
    )  # fmt: skip


def read_ndjson(folder: Path, kind: str) -> list[dict[str, Any]]:
    path = folder / f"{kind}.ndjson"
    if not path.exists():
        return []
    return [json.loads(line, parse_float=Decimal) for line in path.read_text().splitlines()]


def fhir_model(kind: str) -> Any:
    module = importlib.import_module(f"fhir.resources.R4B.{kind.lower()}")
    return getattr(module, kind)


def all_resources(folder: Path, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {o["type"]: read_ndjson(folder, o["type"]) for o in manifest["output"]}


def test_every_exported_resource_validates_against_fhir_r4b(ledger: Ledger, tmp_path: Path) -> None:
    story = tell_story(ledger)
    reader = Reader(uuid4(), "PATRQT")
    out = tmp_path / "ehi"
    manifest = export(ledger, ExportRequest(reader, story.patient, "chartledger export"), out)
    found = all_resources(out, manifest)
    expected = {
        "Patient", "Practitioner", "Organization", "Encounter", "Appointment", "Observation",
        "Condition", "MedicationRequest",
        "AllergyIntolerance", "DocumentReference", "Binary", "Communication", "Provenance",
        "AuditEvent",
    }  # fmt: skip
    assert set(found) == expected
    for kind, resources in found.items():
        model = fhir_model(kind)
        for resource in resources:
            assert model.model_validate(resource).id == resource["id"]
    for entry in manifest["output"]:
        assert entry["count"] == len(found[entry["type"]]) > 0
    # The other patient of the shared thread is never named in this patient's export.
    assert str(story.other_patient) not in "".join(
        (out / f"{o['type']}.ndjson").read_text() for o in manifest["output"]
    )
    assert [p["id"] for p in found["Patient"]] == [str(story.patient)]
    # The clinician is named in this patient's own export (issue 19, 3).
    practitioners = {p["id"]: p for p in found["Practitioner"]}
    assert practitioners[str(story.clinician)]["name"] == [{"text": "Casey Clinician"}]


def test_lab_value_and_unit_come_out_exactly_as_received(ledger: Ledger, tmp_path: Path) -> None:
    story = tell_story(ledger)
    out = tmp_path / "ehi"
    export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), story.patient, "test"), out)
    text = (out / "Observation.ndjson").read_text()
    lab = next(o for o in read_ndjson(out, "Observation") if o["id"] == str(story.lab))
    q = lab["valueQuantity"]
    assert (q["value"], q["unit"], q["system"], q["code"]) == (
        Decimal("5.2"),
        "mg/dL",
        "http://unitsofmeasure.org",
        "mg/dL",
    )
    assert '"valueQuantity":{"value":5.2,"unit":"mg/dL"' in text
    assert lab["referenceRange"][0]["low"]["value"] == Decimal("0.6")
    temperature = next(
        o for o in read_ndjson(out, "Observation") if o["code"]["text"].startswith("Body")
    )
    assert str(temperature["valueQuantity"]["value"]) == "37.20"  # the trailing zero stays
    # A value that is not a JSON number as received keeps its text beside the number.
    glucose = next(
        o for o in read_ndjson(out, "Observation") if o["id"] == str(story.corrected_lab)
    )
    assert glucose["status"] == "corrected"
    assert str(glucose["valueQuantity"]["value"]) == "99.5"


def hl7_imported_lab(story: Story) -> tuple[Document, LabResult]:
    """A result imported from an HL7 message about the story's patient, and the Document
    holding the message, which the result names (with its segment)."""
    message = Document.store(
        content=HL7, sha256=hashlib.sha256(HL7).hexdigest(), original_filename="r.hl7",
        media_type="x-application/hl7-v2+er7", uploader_id=story.clinician,
        patient_id=story.patient,
    )  # fmt: skip
    imported = LabResult.receive(
        patient_id=story.patient, loinc_code="2345-7", test_name="Glucose",
        quantity=Quantity("5.2", "mg/dL"), performing_lab="ACME", source_format="HL7v2 ORU^R01",
        source_document_id=message.id, source_segment=2, source_set_id="1",
    )  # fmt: skip
    return message, imported


def test_an_imported_lab_points_at_its_messages_document_and_segment(
    ledger: Ledger, tmp_path: Path
) -> None:
    story = tell_story(ledger)
    message, imported = hl7_imported_lab(story)
    with acting(user_subject(story.clinician), "test"):
        ledger.save(message, imported)
    out = tmp_path / "ehi"
    manifest = export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), story.patient, "test"), out)
    found = all_resources(out, manifest)
    [observation] = [o for o in found["Observation"] if o["id"] == str(imported.id)]
    [source] = [e for e in observation["extension"] if e["url"].endswith("/source-message")]
    assert source["valueReference"] == {
        "reference": f"DocumentReference/{message.id}",
        "display": "segment 2",
    }
    binaries = {b["id"]: b for b in found["Binary"]}
    assert f"{imported.id}.source" not in binaries  # no copy of the message
    assert f"{story.lab}.source" in binaries  # a result that carries its bytes keeps its own
    documents = {d["id"]: d for d in found["DocumentReference"]}
    [content] = documents[str(message.id)]["content"]
    assert base64.b64decode(content["attachment"]["data"]) == HL7  # the bytes, once, no URL
    assert "url" not in content["attachment"]
    assert documents[str(message.id)]["type"]["coding"][0]["code"] == "11502-2"
    fhir_model("Observation").model_validate(observation)


def test_every_amendment_has_a_provenance(ledger: Ledger, tmp_path: Path) -> None:
    story = tell_story(ledger)
    out = tmp_path / "ehi"
    export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), story.patient, "test"), out)
    provenance = {p["id"]: p for p in read_ndjson(out, "Provenance")}
    addendum = provenance[str(story.addendum)]
    assert addendum["target"] == [{"reference": f"DocumentReference/{story.addendum}"}]
    assert {
        "role": "revision",
        "what": {"reference": f"DocumentReference/{story.note}"},
    } in addendum["entity"]
    assert {"role": "source", "what": {"reference": f"Communication/{story.accepted}"}} in addendum[
        "entity"
    ]
    correction = provenance[str(story.correction)]
    assert correction["target"][0]["reference"].startswith(
        f"Observation/{story.corrected_lab}/_history/"
    )
    # The replaced version is not in the export: a plain reference, its value beside it.
    assert correction["entity"][0]["what"] == {
        "reference": f"Observation/{story.corrected_lab}",
        "display": "version 1: +0099.50 mg/dL",
    }
    request = {"role": "source", "what": {"reference": f"Communication/{story.denied}"}}
    denials = [p for p in provenance.values() if request in p.get("entity", [])]
    assert len(denials) == 1 and denials[0]["policy"]
    letters = {c["id"]: c for c in read_ndjson(out, "Communication")}
    assert denials[0]["target"][0]["reference"].removeprefix("Communication/") in letters
    addenda = [d for d in read_ndjson(out, "DocumentReference") if d.get("relatesTo")]
    assert [d["id"] for d in addenda] == [str(story.addendum)]
    categories = [c["category"][0]["text"] for c in letters.values() if c.get("category")]
    assert sorted(categories) == [
        "amendment-acceptance", "amendment-denial", "amendment-disagreement",
        "amendment-rebuttal", "amendment-request", "amendment-request",
    ]  # fmt: skip


def test_the_export_is_recorded_first_and_shows_in_the_audit_view_and_access_report(
    ledger: Ledger, tmp_path: Path
) -> None:
    story = tell_story(ledger)
    exporter = uuid4()
    out = tmp_path / "ehi"
    manifest = export(ledger, ExportRequest(Reader(exporter, "PATRQT"), story.patient, "t"), out)
    size = manifest["extension"]["https://chartledger.local/fhir/ehi-export"]["logSize"]
    runner_for(ledger).catch_up()
    rows = audit_report(ledger.db, patient_id=str(story.patient), action="export")
    assert [(r["user_id"], r["data_category"], r["purpose"]) for r in rows] == [
        (str(exporter), "chart", "PATRQT")
    ]
    assert rows[0]["position"] >= size  # recorded after the exported range, before writing
    report = patient_access_report(ledger.db, str(story.patient))
    assert ("export", str(exporter)) in [(r["action"], r["user_id"]) for r in report]
    assert audit_report(ledger.db, patient_id=str(story.other_patient), action="export") == []


def test_a_population_export_is_recorded_for_every_patient(ledger: Ledger, tmp_path: Path) -> None:
    story = tell_story(ledger)
    out = tmp_path / "all"
    manifest = export(ledger, ExportRequest(Reader(uuid4(), "HOPERAT"), None, "t"), out)
    found = all_resources(out, manifest)
    assert sorted(p["id"] for p in found["Patient"]) == sorted(
        [str(story.patient), str(story.other_patient)]
    )
    for kind, resources in found.items():
        model = fhir_model(kind)
        for resource in resources:
            model.model_validate(resource)
    runner_for(ledger).catch_up()
    for patient in (story.patient, story.other_patient):
        report = patient_access_report(ledger.db, str(patient))
        assert [r["action"] for r in report].count("export") == 1


def test_an_unknown_patient_is_refused_and_nothing_is_written(
    ledger: Ledger, tmp_path: Path
) -> None:
    tell_story(ledger)
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "ehi"
    with pytest.raises(PatientNotFound):
        export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), uuid4(), "t"), out)
    assert list(exports.iterdir()) == []
    out.mkdir()
    with pytest.raises(OutputExists):
        export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), None, "t"), out)
    assert list(out.iterdir()) == []


def _values(path: Path) -> list[dict[str, Any]]:
    found = []
    for value in msgpack.Unpacker(path.open("rb"), raw=False):
        assert decode(encode(value)) == value
        found.append(value)
    return found


def test_native_records_let_a_recipient_check_every_commitment_and_completeness(
    ledger: Ledger, tmp_path: Path
) -> None:
    story = tell_story(ledger)
    out = tmp_path / "ehi"
    export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), story.patient, "t"), out)
    records = _values(out / "native" / "records.msgpack")
    assert records and all(
        f"patient:{story.patient}" in parse_header(r["header"]).subjects for r in records
    )
    for r in records:
        header = parse_header(r["header"])
        assert commitment(r["salt"], r["payload"]) == header.commitment
        assert parse_leaf(r["leaf"]).event == event_digest(r["header"])
    (proof,) = _values(out / "native" / "completeness.msgpack")
    checkpoints = {
        c["size"]: parse_note(c["note"]) for c in _values(out / "native" / "checkpoints.msgpack")
    }
    checkpoint = checkpoints[proof["size"]]
    positions = verify_completeness(
        CompletenessProof(
            proof["subject"], proof["seq"], proof["last_position"], proof["head_index"],
            proof["heads_size"], proof["head_proof"],
            [ProvenLeaf(p["position"], p["leaf"], p["proof"]) for p in proof["leaves"]],
        ),
        checkpoint.size, checkpoint.root, checkpoint.subjects_root,
    )  # fmt: skip
    assert positions == sorted(r["position"] for r in records if r["position"] < checkpoint.size)


def test_population_native_records_rebuild_every_signed_root(
    ledger: Ledger, tmp_path: Path
) -> None:
    tell_story(ledger)
    out = tmp_path / "all"
    export(ledger, ExportRequest(Reader(uuid4(), "HOPERAT"), None, "t"), out)
    records = _values(out / "native" / "records.msgpack")
    assert [r["position"] for r in records] == list(range(len(records)))
    leaves = [r["leaf"] for r in records]
    checkpoints = [parse_note(c["note"]) for c in _values(out / "native" / "checkpoints.msgpack")]
    assert checkpoints
    for checkpoint in checkpoints:
        assert root_hash(leaves[: checkpoint.size]) == checkpoint.root


def test_a_disposed_record_leaves_its_audit_trail_and_headers_but_no_content(
    ledger: Ledger, tmp_path: Path
) -> None:
    from legal_hold.retention import Policy, dispose

    story = tell_story(ledger)
    dispose(
        ledger, story.patient, policy=Policy.simple("0y", 0, 0), by=uuid4(), at=datetime.now(UTC)
    )
    steps: list[tuple[int, int]] = []
    out = tmp_path / "all"
    request = ExportRequest(Reader(uuid4(), "HOPERAT"), None, "t")
    manifest = export(ledger, request, out, lambda done, total: steps.append((done, total)))
    found = all_resources(out, manifest)
    for kind, resources in found.items():
        for resource in resources:
            fhir_model(kind).model_validate(resource)
    assert [p["id"] for p in found["Patient"]] == [str(story.other_patient)]
    # The trail names the disposed patient by identifier: no Patient resource to refer to.
    disposed = {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{story.patient}"}
    assert any(
        e["what"].get("identifier") == disposed for a in found["AuditEvent"] for e in a["entity"]
    )
    from tests.integration.test_ehi_export_shape import r4_errors, read_export, reference_problems

    lines = read_export(out)
    problems = [
        problem
        for line in lines.values()
        for problem in r4_errors(json.loads(line)) + reference_problems(json.loads(line), lines)
    ]
    assert problems == [], problems[:10]
    records = _values(out / "native" / "records.msgpack")
    # The events sealed under their key (a thread shared with the other patient may be sealed
    # under the other's key, LEDGER_FORMAT.md §4.3, and stays readable).
    mine = f"patient:{story.patient}#"
    theirs = [r for r in records if parse_header(r["header"]).key.startswith(mine)]
    readable = [parse_header(r["header"]).type for r in theirs if r["payload"] is not None]
    assert theirs and readable == [], readable
    # Progress: reported per batch, ending at the whole range.
    assert steps and steps[-1][0] == steps[-1][1] == len(records)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)


def test_the_demo_practice_exports_valid_resources_for_every_patient(
    ledger: Ledger, tmp_path: Path
) -> None:
    from api.demo import load_demo
    from api.settings import Settings

    assert load_demo(ledger, Settings(store=ledger.config, pbkdf2_iterations=1_000), patients=6)
    out = tmp_path / "demo"
    manifest = export(ledger, ExportRequest(Reader(uuid4(), "HOPERAT"), None, "t"), out)
    found = all_resources(out, manifest)
    assert len(found["Patient"]) == 6
    assert {"Appointment", "Observation", "DocumentReference", "Communication"} <= set(found)
    for kind, resources in found.items():
        for resource in resources:
            fhir_model(kind).model_validate(resource)


def test_a_tampered_payload_stops_the_export_with_one_line_and_no_folder(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    from api.cli import main as chartledger
    from tests.tamper_tools import raw_sql

    story = tell_story(ledger)
    risk = User.register(name="Rita", role="risk_manager")
    ledger.save(risk)
    with ledger.db.read() as c:
        c.execute(
            "SELECT position FROM stored_events WHERE originator_id = ? AND originator_version = 1",
            (story.lab.hex if ledger.config.database_url is None else story.lab,),
        )
        (position,) = c.fetchone()
    with raw_sql(ledger) as conn:  # an attacker flips the last byte of the sealed payload
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        query = f"SELECT state FROM stored_events WHERE position = {mark}"
        (state,) = conn.execute(query, (position,)).fetchone()
        record = decode(bytes(state))
        record["sealed"] = record["sealed"][:-1] + bytes([record["sealed"][-1] ^ 1])
        update = f"UPDATE stored_events SET state = {mark} WHERE position = {mark}"
        conn.execute(update, (encode(record), position))
    out = tmp_path / "ehi"
    capsys.readouterr()
    command = ["export", "--patient", str(story.patient), "--out", str(out), "--by", str(risk.id)]
    assert chartledger(command) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fails its checks" in err and "Example" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "home"]
