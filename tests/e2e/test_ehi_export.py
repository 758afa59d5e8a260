"""The EHI export over HTTP and from the CLI, on both stores: owners and risk managers only
(403 problem for anyone else, nothing written), bad input a 4xx problem, files downloadable
(each download recorded), the export in the patient's access report, and every FHIR resource
valid against fhir.resources' R4B models."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from uuid import uuid4

import pytest

from api.cli import main as chartledger
from api.client import Forbidden, NotFound, Unprocessable
from tests.e2e.conftest import Practice
from tests.e2e.test_clinical import ada, glucose, in_care, staffed
from tests.integration.test_ehi_export import fhir_model


def test_owners_and_risk_managers_export_and_nobody_else_can(
    practice: Practice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner, casey, risk = staffed(practice)
    patient = casey.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.record_lab(glucose(patient))
    note = casey.draft_note(patient, "progress", "BP fine")
    casey.sign_note(note.note_id)
    casey.amend_note(note.note_id, "BP recheck 150/95", "late entry")
    exports = practice.settings.store.home / "exports"

    # A clinician is refused before anything is read or written: only the refusals are
    # recorded, one row each (issue 17: every access decision is an audit row).
    before = practice.leaves()
    with pytest.raises(Forbidden) as refused:
        casey.export_ehi(patient)
    assert refused.value.type.endswith(":forbidden")
    with pytest.raises(Forbidden):
        casey.export_file(uuid4(), "manifest.json")
    assert practice.leaves() == before + 2 and not exports.exists()
    casey_id = str(casey.me().user_id)
    rows = [r for r in risk.audit(user_id=casey_id) if r.outcome == "failure"]
    assert [(r.event_type, r.reason) for r in rows] == [
        ("domain.refusals:RoleRefusal.Refused", "role")
    ] * 2
    before = practice.leaves()

    # Bad input: neither or both scopes, an unknown purpose: 422 problems, nothing written.
    for body in ({}, {"all": True, "patient_id": str(patient)}, {"all": True, "purpose": "X"}):
        with pytest.raises(Unprocessable):
            risk.request("POST", "/exports", json=body)
    assert practice.leaves() == before
    with pytest.raises(NotFound):
        risk.export_ehi(uuid4())
    assert not list(exports.iterdir())

    manifest = risk.export_ehi(patient)
    ours = manifest["extension"]["https://chartledger.local/fhir/ehi-export"]
    assert manifest["requiresAccessToken"] is True and ours["scope"] == "patient"
    assert manifest["request"].endswith("/exports")
    for output in manifest["output"]:
        text = risk.export_file(ours["exportId"], output["url"]).decode("ascii")
        lines = [json.loads(line, parse_float=Decimal) for line in text.splitlines()]
        assert len(lines) == output["count"]
        for resource in lines:
            fhir_model(output["type"]).model_validate(resource)
    observation = risk.export_file(ours["exportId"], "Observation.ndjson").decode()
    assert '"valueQuantity":{"value":5.2,"unit":"mg/dL"' in observation
    assert risk.export_file(ours["exportId"], "native/records.msgpack")
    for bad in ("..%2F..%2Fpractice.json", "native%2F..%2F..%2Fpractice.json", "x.ndjson"):
        with pytest.raises(NotFound):
            risk.export_file(ours["exportId"], bad)

    everyone = owner.export_ehi(all_patients=True, purpose="HOPERAT")
    assert {o["type"] for o in everyone["output"]} >= {"Patient", "Observation", "Provenance"}

    report = risk.access_report(patient)
    exporters = {str(r.user_id) for r in report if r.action == "export"}
    assert exporters == {str(risk.me().user_id), str(owner.me().user_id)}

    # The CLI: as a risk manager it writes; as a clinician, or into an existing folder, refused.
    out = tmp_path / "cli-export"
    capsys.readouterr()
    risk_id, casey_id = str(risk.me().user_id), str(casey.me().user_id)
    assert (
        chartledger(["export", "--patient", str(patient), "--out", str(out), "--by", risk_id]) == 0
    )
    assert "Exported" in capsys.readouterr().out
    assert (out / "manifest.json").exists() and (out / "EHI_EXPORT.md").exists()
    # The CLI's manifest: its request the equivalent Bulk Data URL, files beside it (no server).
    local = json.loads((out / "manifest.json").read_text())
    assert local["request"] == f"http://127.0.0.1:8000/fhir/Patient/{patient}/$export"
    assert local["output"][0]["url"] == "Patient.ndjson"
    docs = "http://127.0.0.1:8000/docs/EHI_EXPORT.md"
    assert {"relation": "describedby", "url": docs} in local["link"]
    assert f"Documentation of this format (public): {docs}" in (out / "README.md").read_text()
    assert chartledger(["export", "--all", "--out", str(out), "--by", risk_id]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    elsewhere = tmp_path / "elsewhere"
    assert chartledger(["export", "--all", "--out", str(elsewhere), "--by", casey_id]) == 2
    err = capsys.readouterr().err
    assert "not an active owner or risk manager" in err and "Quill" not in err
    assert not elsewhere.exists()
