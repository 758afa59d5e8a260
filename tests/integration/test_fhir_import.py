"""The FHIR import on SQLite and PostgreSQL: a practice with every kind of record, exported
(projections/ehi_export.py), imported into a fresh practice and exported again keeps its
clinical content; the same files imported again write nothing twice; a hand-written US Core
export from another system imports; broken variants are refused whole with a report naming
file, line, resource and rule (docs/IMPORTS.md §9)."""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as cli_main
from api.demo import load_demo
from api.fhir_importing import import_fhir, read_export
from api.importing import Importer
from api.settings import Settings
from domain.allergies import Allergy
from domain.appointments import Appointment
from domain.base import user_subject
from domain.documents import Document
from domain.encounters import Encounter
from domain.imports.report import ImportRejected
from domain.labs import LabResult
from domain.medications import Medication
from domain.messages import Thread
from domain.patients import Patient
from domain.problems import Problem
from domain.users import User
from domain.vitals import VitalSign
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections.chart import chart
from projections.ehi_export import ExportRequest, export
from projections.reads import Reader
from projections.rebuild import all_projections, rebuild
from projections.runner import Runner
from tests.conftest import PG_URL, pg_connect
from tests.integration.test_clinical_views import snapshot
from tests.integration.test_ehi_export import fhir_model, tell_story
from tests.support import QUIET, init_practice, leaves

US_CORE = Path(__file__).resolve().parent.parent / "fixtures" / "fhir" / "us-core"


@pytest.fixture
def fresh_config(store_config: StoreConfig) -> Iterator[StoreConfig]:
    """A second, uninitialised practice on the same kind of store as ``store_config``."""
    if store_config.database_url is None:
        yield StoreConfig(home=store_config.home.parent / "fresh")
        return
    conn = pg_connect()
    schema = "t_" + uuid.uuid4().hex[:16]
    conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield StoreConfig(
            home=store_config.home.parent / "fresh", database_url=f"{PG_URL}?schema={schema}"
        )
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


def owner_of(ledger: Ledger) -> Importer:
    owner = User.register(name="Olive Owner", role="owner")
    with acting(user_subject(owner.id), "test"):
        ledger.save(owner)
    return Importer(
        ledger=ledger,
        runner=Runner(ledger, all_projections()),
        by=owner.id,
        is_owner=True,
        acting=lambda: acting(user_subject(owner.id), "test"),
    )


def export_all(ledger: Ledger, out: Path) -> None:
    reader = Reader(user_id=uuid.uuid4(), purpose_of_use="PATRQT")
    export(ledger, ExportRequest(reader=reader, patient_id=None, request="test"), out)


def resources(folder: Path) -> list[dict[str, Any]]:
    found = []
    for path in sorted(folder.glob("*.ndjson")) if folder.is_dir() else [folder]:
        found += [
            json.loads(x, parse_float=str, parse_int=str)  # numbers as their digits
            for x in path.read_text().splitlines()
            if x.strip()
        ]
    return found


def _codes(concept: dict[str, Any] | None) -> list[tuple[Any, Any]]:
    return sorted((c.get("system"), c.get("code")) for c in (concept or {}).get("coding", []))


def _text(resource: dict[str, Any], path: str) -> Any:
    value: Any = resource
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _ingested(resource: dict[str, Any]) -> bool:
    """An email (a message/rfc822 payload) or an SMS (medium SMS), as the import reads them."""
    medium = json.dumps(resource.get("medium"))
    payload = json.dumps(resource.get("payload"))
    return "message/rfc822" in payload or '"SMS"' in medium


def clinical_content(folder: Path) -> dict[str, Any]:
    """What must survive a round trip, without ids, ledger times or who recorded it: the
    patients' demographics, each record's codes, values and units as received, clinical times,
    document and message bytes (and hashes), every other Communication (secure messages,
    amendment letters) as sent, encounters, in a canonical order."""
    everything = resources(folder)
    by_id = {(r["resourceType"], r["id"]): r for r in everything}
    binaries = {r["id"]: r for r in everything if r["resourceType"] == "Binary"}
    mrn = {}
    patients = []
    for r in everything:
        if r["resourceType"] == "Patient":
            mr = next(i["value"] for i in r["identifier"] if i.get("type"))
            mrn[r["id"]] = mr
            patients.append(
                (mr, r["name"][0]["family"], r["name"][0]["given"], r["gender"], r["birthDate"])
            )

    def who(ref: dict[str, Any]) -> str:
        return mrn[ref["reference"].partition("/")[2]]

    def party(ref: dict[str, Any] | None) -> tuple[Any, ...] | None:
        """A party as the content knows it: a patient by MRN, anyone else by the kind of
        resource the source named and their display (ids are each system's own)."""
        if ref is None:
            return None
        reference = ref.get("reference", "")
        if reference.startswith("Patient/"):
            return ("patient", who(ref), ref.get("display"))
        return (ref.get("type") or reference.partition("/")[0] or None, ref.get("display"))

    content: dict[str, list[Any]] = {"patients": sorted(patients)}
    for r in everything:
        kind = r["resourceType"]
        if kind == "Observation":
            q = r["valueQuantity"]
            ext = {
                e["url"].rpartition("/")[2]: e.get("valueString") for e in r.get("extension", [])
            }
            row = (
                who(r["subject"]),
                _codes(r["code"]),
                r["code"].get("text"),
                q["value"],
                q.get("_value"),
                q["unit"],
                r.get("effectiveDateTime"),
                ext.get("original-time"),
                json.dumps(r.get("referenceRange"), sort_keys=True),
                json.dumps(r.get("interpretation"), sort_keys=True),
                _text(r, "category")[0]["coding"][0]["code"],
            )
            content.setdefault("observations", []).append(row)
        elif kind == "Condition":
            content.setdefault("conditions", []).append(
                (
                    who(r["subject"]),
                    _codes(r["code"]),
                    r["code"]["text"],
                    r.get("onsetString"),
                    r.get("abatementDateTime"),
                    _codes(r["clinicalStatus"]),
                )
            )
        elif kind in ("MedicationStatement", "MedicationRequest"):
            dosage = (r.get("dosage") or r.get("dosageInstruction"))[0]
            content.setdefault("medications", []).append(
                (
                    who(r["subject"]),
                    _codes(r["medicationCodeableConcept"]),
                    r["medicationCodeableConcept"]["text"],
                    json.dumps(dosage["doseAndRate"], sort_keys=True),
                    r["status"],
                )
            )
        elif kind == "AllergyIntolerance":
            content.setdefault("allergies", []).append(
                (
                    who(r["patient"]),
                    _codes(r["code"]),
                    r["code"]["text"],
                    json.dumps(r.get("reaction"), sort_keys=True),
                    _codes(r["clinicalStatus"]),
                )
            )
        elif kind == "DocumentReference":
            a = r["content"][0]["attachment"]
            data = a.get("data") or binaries[a["url"].rpartition("/")[2]]["data"]
            content.setdefault("documents", []).append(
                (who(r["subject"]), base64.b64decode(data), a["hash"], a["contentType"])
            )
        elif kind == "Communication" and _ingested(r):
            payload = json.dumps(r["payload"], sort_keys=True)
            # The source's own times (valueString); the recorded time is this ledger's own.
            original = [e["valueString"] for e in r.get("extension", []) if "valueString" in e]
            content.setdefault("communications", []).append(
                (
                    who(r["subject"]),
                    r["topic"]["text"],
                    payload,
                    original,
                    _text(r, "sender.display"),
                )
            )
        elif kind == "Communication":
            # Secure messages, amendment letters and any other Communication: kept as sent.
            content.setdefault("messages", []).append(
                (
                    who(r["subject"]),
                    _text(r, "topic.text"),
                    r["status"],
                    json.dumps(r.get("payload"), sort_keys=True),
                    r.get("sent"),
                    r.get("received"),
                    party(r.get("sender")),
                    sorted(map(repr, map(party, r.get("recipient", [])))),
                    json.dumps(r.get("category"), sort_keys=True),
                    json.dumps(r.get("medium"), sort_keys=True),
                    json.dumps(r.get("reasonCode"), sort_keys=True),
                )
            )
        elif kind == "Encounter":
            content.setdefault("encounters", []).append(
                (
                    who(r["subject"]),
                    r["status"],
                    json.dumps(r["class"], sort_keys=True),
                    json.dumps(r.get("type"), sort_keys=True),
                    json.dumps(r.get("period"), sort_keys=True),
                    sorted(
                        repr(
                            (json.dumps(p.get("type"), sort_keys=True), party(p.get("individual")))
                        )
                        for p in r.get("participant", [])
                    ),
                    json.dumps(r.get("reasonCode"), sort_keys=True),
                )
            )
    del by_id
    return {k: sorted(map(repr, v)) for k, v in content.items()}


def test_a_practice_exported_and_imported_into_a_fresh_one_exports_the_same_content(
    ledger: Ledger, fresh_config: StoreConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    story = tell_story(ledger)
    first = tmp_path / "first"
    export_all(ledger, first)
    init_practice(fresh_config, monkeypatch)
    fresh = Ledger(fresh_config, **QUIET)
    try:
        importer = owner_of(fresh)
        exported = read_export(first)
        # Everything the export holds is taken: secure messages, amendment letters and the
        # encounter too, with no --accept-valid.
        report = import_fhir(importer, exported, None, "first")
        assert report.written and report.rejections == () and report.accepted == report.items
        # The source's clinician is named as the source named them (Chartledger's export: a
        # reference to its Practitioner resource), never made a user here.
        (condition,) = resources(first / "Condition.ndjson")
        source = exported.source
        assert source is not None
        key = fresh.private_id("fhir-source", f"{source}\nCondition/{condition['id']}")
        assert fresh.repository.get(key).practitioners == [
            {"reference": f"Practitioner/{story.clinician}"}
        ]
        second = tmp_path / "second"
        export_all(fresh, second)
        content = clinical_content(first)
        assert len(content["messages"]) == 7 and len(content["encounters"]) == 1
        assert clinical_content(second) == content
        for kind in ("Communication", "Encounter"):
            model = fhir_model(kind)
            for resource in resources(second / f"{kind}.ndjson"):
                model.model_validate(json.loads(json.dumps(resource)))

        again = import_fhir(importer, exported, None, "first")
        assert again.written and again.created == ()
        third = tmp_path / "third"
        export_all(fresh, third)
        assert clinical_content(third) == clinical_content(first)
    finally:
        fresh.close()


def test_a_us_core_export_from_another_system_imports_with_its_ids_times_and_digits(
    ledger: Ledger,
) -> None:
    importer = owner_of(ledger)
    # Joe is a patient of the practice already, under the hospital's identifier too.
    joe = Patient.register(
        mrn="A-7", given_name="J", family_name="S", birth_date=date(2016, 4, 12), sex="male",
        identifiers=[{"system": "http://hospital.smarthealthit.org", "value": "1032703"}],
    )  # fmt: skip
    with acting(user_subject(importer.by), "test"):
        ledger.save(joe)
    exported = read_export(US_CORE)
    assert exported.source == "https://ehr.example.org/fhir"
    report = import_fhir(importer, exported, None, "us-core")
    assert report.written and report.rejections == () and report.items == 24
    records = {r.id: r for r in (ledger.repository.get(i) for i in report.created)}
    patients = [r for r in records.values() if isinstance(r, Patient)]
    assert sorted(p.mrn for p in patients) == ["1032702", "1032704"]  # Joe matched
    amy = next(p for p in patients if p.mrn == "1032702")
    assert (amy.family_name, amy.given_name) == ("Baxter", "Amy V.")  # the official name
    assert {"system": "https://ehr.example.org/fhir", "value": "Patient/example"} in amy.identifiers
    heart = next(
        r for r in records.values() if isinstance(r, VitalSign) and r.loinc_code == "8867-4"
    )
    assert heart.patient_id == joe.id and ledger.repository.get(joe.id).mrn == "A-7"  # not updated
    labs = {r.loinc_code: r for r in records.values() if isinstance(r, LabResult)}
    assert (labs["2160-0"].value, labs["2160-0"].unit) == ("0.80", "mg/dL")
    assert labs["2160-0"].collected_at == "2024-04"  # precision as sent
    assert labs["6690-2"].value == "7.20" and labs["6690-2"].unit == "10*3/uL"
    assert labs["2339-0"].collected_at == "2024-04-01T08:30:00-04:00"
    assert (labs["2339-0"].reference_low, labs["2339-0"].reference_high) == ("70", "99")
    vitals = {r.loinc_code: r for r in records.values() if isinstance(r, VitalSign)}
    assert vitals["8310-5"].value == "36.50"
    # The record keeps the instant (the ledger's times are UTC); the text as sent, offset and
    # all, is in the resource's source record.
    assert vitals["8310-5"].measured_at == datetime(2024, 4, 1, 12, 5, tzinfo=UTC)
    meds = {r.drug: r for r in records.values() if isinstance(r, Medication)}
    assert not meds["Amoxicillin 250 MG Oral Capsule"].active
    assert meds["Tylenol PM"].dose_value == "325" and meds["Tylenol PM"].route == "Oral route"
    assert {a.substance: a.active for a in records.values() if isinstance(a, Allergy)} == {
        "Penicillin G": True,
        "Peanuts": False,
    }
    problems = {p.code: p for p in records.values() if isinstance(p, Problem)}
    assert problems["J06.9"].status == "resolved" and problems["442311008"].onset == "2016-04-12"
    documents = [d for d in records.values() if isinstance(d, Document)]
    pdf = base64.b64decode(
        json.loads((US_CORE / "Binary.ndjson").read_text())["data"]
    )  # the Binary the url names
    assert sorted(d.media_type for d in documents) == ["application/pdf", "text/plain"]
    assert pdf in [d.content for d in documents]
    threads = [t for t in records.values() if isinstance(t, Thread)]
    assert sorted(t.kind for t in threads) == ["email", "imported", "sms"]
    # The plain Communication: its payload exactly, its times as written, its parties as named.
    letter = next(t for t in threads if t.kind == "imported")
    (imported,) = [e for e in ledger.events.get(letter.id) if type(e).__name__.endswith("Imported")]
    assert (letter.topic, letter.patient_ids) == ("your glucose result", [amy.id])
    assert (imported.source, imported.resource_id) == ("https://ehr.example.org/fhir", "letter-1")
    assert (imported.sent, imported.received) == ("2024-04-02T10:15:30.25-04:00", "2024-04-02")
    assert imported.parts[0] == {
        "text": "Your fasting glucose was normal.\n  Café ☕ — keep it up.  "
    }
    assert (
        imported.parts[1]["data"]
        == b"Fasting glucose 95 mg/dL (70-99).\r\nNo change to your plan.\n"
    )
    assert imported.sender == {
        "reference": "Practitioner/practitioner-1",
        "display": "Ronald Bone, MD",
    }
    assert imported.recipients == [
        {"reference": "Patient/example", "display": "Amy V. Baxter", "patient": str(amy.id)},
        {
            "system": "http://hl7.org/fhir/sid/us-npi",
            "value": "9941339108",
            "display": "Dr. Carla Lee",
        },
    ]
    # Encounters are history of the chart, never bookings: no appointment is made of them.
    encounters = {e.resource_id: e for e in records.values() if isinstance(e, Encounter)}
    assert sorted(encounters) == ["example-1", "example-2", "telehealth-3"]
    assert not [r for r in records.values() if isinstance(r, Appointment)]
    visit = encounters["example-1"]
    assert (visit.status, visit.encounter_class["code"], visit.patient_id) == (
        "finished",
        "AMB",
        amy.id,
    )
    assert (visit.period_start, visit.period_end) == (
        "2024-04-01T08:00:00-04:00",
        "2024-04-01T08:45:00-04:00",
    )
    assert visit.participants == [
        {"individual": {"reference": "Practitioner/practitioner-1", "display": "Ronald Bone, MD"}}
    ]
    assert encounters["example-2"].period_start == "2024-05-02"  # precision as sent

    # Every resource has its source record: id, file, line, file digest, bytes and times.
    files = {f.name: f for f in exported.files}
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM stored_events WHERE topic LIKE ?", ("%SourceResource%",))
        row = c.fetchone()
    assert row is not None and row[0] == 24
    key = ledger.private_id(
        "fhir-source", "https://ehr.example.org/fhir\nObservation/serum-glucose"
    )
    source = ledger.repository.get(key)
    assert (source.file, source.line) == ("Observation.ndjson", 1)
    assert source.file_sha256 == files["Observation.ndjson"].sha256
    assert source.resource == files["Observation.ndjson"].data.split(b"\n")[0]
    assert source.times["effectiveDateTime"] == "2024-04-01T08:30:00-04:00"
    assert source.times["issued"] == "2024-04-01T12:01:13.000-04:00"
    assert source.record_id == labs["2339-0"].id
    practitioner = ledger.repository.get(
        ledger.private_id(
            "fhir-source", "https://ehr.example.org/fhir\nPractitioner/practitioner-1"
        )
    )
    assert practitioner.record_id is None and b"Bone" in practitioner.resource
    ordered = ledger.repository.get(
        ledger.private_id(
            "fhir-source", "https://ehr.example.org/fhir\nMedicationRequest/self-tylenol"
        )
    )
    assert ordered.practitioners == [{"reference": "Practitioner/practitioner-1"}]

    before = leaves(ledger)
    again = import_fhir(importer, read_export(US_CORE), None, "us-core")
    assert again.created == () and leaves(ledger) == before + 1  # the summary alone


def broken_copy(tmp_path: Path) -> Path:
    """The US Core export with one resource broken each way the report must name."""
    folder = tmp_path / "broken"
    shutil.copytree(US_CORE, folder)

    def edit(name: str, number: int, change: Any) -> None:
        path = folder / name
        lines = path.read_text().splitlines()
        lines[number - 1] = change(lines[number - 1])
        path.write_text("\n".join(lines) + "\n")

    edit("Condition.ndjson", 1, lambda s: s.replace("Patient/child-example", "Patient/nobody"))
    edit("Observation.ndjson", 3, lambda s: s.replace('"unit":"10*3/uL"', '"unit":"10^3 /uL"'))
    edit("Patient.ndjson", 3, lambda s: s.replace(',"birthDate":"1950-11-30"', ""))
    edit("AllergyIntolerance.ndjson", 2, lambda s: s.replace('"id":"nka-old"', '"id":"example"'))
    edit("Encounter.ndjson", 2, lambda s: "this is not FHIR " + s[:5])
    return folder


def test_broken_resources_are_named_by_file_line_and_id_and_nothing_is_written(
    ledger: Ledger, tmp_path: Path
) -> None:
    importer = owner_of(ledger)
    before = leaves(ledger)
    with pytest.raises(ImportRejected) as refused:
        import_fhir(importer, read_export(broken_copy(tmp_path)), None, "broken")
    lines = refused.value.report.lines()
    expected = {
        "Patient.ndjson line 3 (Patient/pat-3)": "birthDate is missing",
        "Observation.ndjson line 3 (Observation/cbc-wbc)": "valueQuantity.unit is not a UCUM",
        "Condition.ndjson line 1 (Condition/hc1)": "subject does not reference a Patient",
        "AllergyIntolerance.ndjson line 1 (AllergyIntolerance/example)": "also at",
        "AllergyIntolerance.ndjson line 2 (AllergyIntolerance/example)": "also at",
        "Encounter.ndjson line 2": "not a FHIR resource",
        # Every record of the rejected patient goes with it.
        "MedicationStatement.ndjson line 1 (MedicationStatement/uscore-ms1)": "is rejected",
    }
    for location, reason in expected.items():
        assert any(x.startswith(location + ":") and reason in x for x in lines), (location, lines)
    phi = ("Baxter", "Shaw", "Nakamura", "1950-11-30", "7.20", "glucose", "Amy")
    assert not [x for x in lines if any(p in x for p in phi)]
    assert leaves(ledger) == before
    # With accept_valid the rest is written and the report still names the broken ones.
    report = import_fhir(
        importer, read_export(broken_copy(tmp_path / "again")), None, "broken", accept_valid=True
    )
    assert report.written and len(report.rejections) == len(lines)


def test_the_cli_imports_a_folder_and_refuses_a_broken_one_with_exit_2(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = owner_of(ledger).by
    before = leaves(ledger)
    assert cli_main(["import", "fhir", str(broken_copy(tmp_path)), "--by", str(owner)]) == 2
    out, err = capsys.readouterr()
    assert "REJECTED Patient.ndjson line 3 (Patient/pat-3): birthDate is missing" in out
    assert err.strip().count("\n") == 0 and "nothing written" in err
    assert leaves(ledger) == before
    assert cli_main(["import", "fhir", str(tmp_path / "nowhere"), "--by", str(owner)]) == 2
    assert "is not a folder" in capsys.readouterr().err
    no_uri = ["import", "fhir", str(US_CORE), "--by", str(owner), "--source", "not a uri"]
    assert cli_main(no_uri) == 2
    assert "must be an absolute URI" in capsys.readouterr().err
    assert cli_main(["import", "fhir", str(US_CORE), "--by", str(owner)]) == 0
    assert "Imported 24 of 24 fhir item(s), 0 rejected" in capsys.readouterr().out


def test_chartledger_own_export_of_the_demo_practice_imports_with_no_rejection(
    ledger: Ledger, fresh_config: StoreConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's case: the demo's secure messages and amendment letters were refused."""
    settings = Settings(store=ledger.config, pbkdf2_iterations=1000, background=False)
    assert load_demo(ledger, settings, patients=12)
    first = tmp_path / "first"
    export_all(ledger, first)
    # The demo books appointments but checks no one in: no Encounter; its Appointments are
    # bookings of that practice's schedule, not imported (docs/IMPORTS.md §9.7).
    assert "Communication" in {r["resourceType"] for r in resources(first)}
    init_practice(fresh_config, monkeypatch)
    fresh = Ledger(fresh_config, **QUIET)
    try:
        report = import_fhir(owner_of(fresh), read_export(first), None, "demo")
        assert report.written and report.rejections == () and report.accepted == report.items
        second = tmp_path / "second"
        export_all(fresh, second)
        assert (second / "Communication.ndjson").exists()
        assert clinical_content(second) == clinical_content(first)
    finally:
        fresh.close()


def test_another_systems_messages_and_encounters_are_exported_as_it_wrote_them(
    ledger: Ledger, tmp_path: Path
) -> None:
    importer = owner_of(ledger)
    report = import_fhir(importer, read_export(US_CORE), None, "us-core")
    assert report.written and report.rejections == ()
    out = tmp_path / "out"
    export_all(ledger, out)
    sent = {r["id"]: r for r in resources(US_CORE / "Communication.ndjson")}["letter-1"]
    (letter,) = [
        r
        for r in resources(out / "Communication.ndjson")
        if {"system": "https://ehr.example.org/fhir", "value": "Communication/letter-1"}
        in r["identifier"]
    ]
    for element in ("status", "category", "medium", "topic", "sent", "received", "payload"):
        assert letter[element] == sent[element], element
    assert letter["sender"] == {
        "type": "Practitioner",
        "identifier": {
            "system": "https://ehr.example.org/fhir",
            "value": "Practitioner/practitioner-1",
        },
        "display": "Ronald Bone, MD",
    }
    assert letter["recipient"][1] == sent["recipient"][1]  # an identifier stays as it was
    patient = letter["recipient"][0]["reference"]
    assert letter["subject"] == {"reference": patient} and patient != "Patient/example"
    encounters = {
        next(i["value"] for i in r["identifier"] if i["system"].startswith("https://ehr")): r
        for r in resources(out / "Encounter.ndjson")
    }
    assert sorted(encounters) == [
        f"Encounter/{e}" for e in ("example-1", "example-2", "telehealth-3")
    ]
    for source in resources(US_CORE / "Encounter.ndjson"):
        again = encounters[f"Encounter/{source['id']}"]
        for element in ("status", "class", "type", "period", "reasonCode"):
            assert again.get(element) == source.get(element), element
        for before, after in zip(
            source.get("participant", []), again.get("participant", []), strict=True
        ):
            assert after.get("type") == before.get("type")
            assert after["individual"]["display"] == before["individual"]["display"]
        fhir_model("Encounter").model_validate(json.loads(json.dumps(again)))
    fhir_model("Communication").model_validate(json.loads(json.dumps(letter)))
    # The export's own encounters are unchanged: none is made of an appointment here.
    assert not (out / "Appointment.ndjson").exists()


def test_imported_encounters_are_in_the_chart_and_the_views_rebuild_the_same(
    ledger: Ledger,
) -> None:
    importer = owner_of(ledger)
    report = import_fhir(importer, read_export(US_CORE), None, "us-core")
    assert report.written
    runner = Runner(ledger, all_projections())
    size = runner.catch_up()
    live = snapshot(ledger)
    amy = next(
        r for r in (ledger.repository.get(i) for i in report.created) if isinstance(r, Patient)
    )
    encounters = [e for e in chart(ledger.db, amy.id) if e.kind == "Encounter"]
    assert sorted(e.state["resource_id"] for e in encounters) == ["example-1", "telehealth-3"]
    assert rebuild(ledger, workers=2) == size
    assert snapshot(ledger) == live
