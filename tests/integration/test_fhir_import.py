"""The FHIR import on SQLite and PostgreSQL: a practice with every kind of record, exported
(projections/ehi_export.py), imported into a fresh practice and exported again keeps its
clinical content; the same files imported again write nothing twice; a hand-written US Core
export from another system imports; broken variants are refused whole with a report naming
file, line, resource and rule (docs/IMPORTS.md §9)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.fhir_importing import import_fhir, read_export
from api.importing import Importer
from domain.base import user_subject
from domain.imports.report import ImportRejected
from domain.users import User
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections.ehi_export import ExportRequest, export
from projections.reads import Reader
from projections.rebuild import all_projections
from projections.runner import Runner
from tests.conftest import PG_URL, pg_connect
from tests.integration.test_ehi_export import tell_story
from tests.support import QUIET, init_practice

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
    for path in sorted(folder.glob("*.ndjson")):
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


def clinical_content(folder: Path) -> dict[str, Any]:
    """What must survive a round trip, without ids, ledger times or who recorded it: the
    patients' demographics, each record's codes, values and units as received, clinical times,
    document and message bytes (and hashes), in a canonical order."""
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
        elif kind == "Communication" and "category" not in r:  # not the amendment letters
            medium = json.dumps(r["medium"], sort_keys=True)
            if "ONLINEWRIT" in medium:
                continue  # secure messages are not imported (docs/IMPORTS.md §9.3)
            payload = json.dumps(r["payload"], sort_keys=True)
            original = [e["valueString"] for e in r.get("extension", [])]
            content.setdefault("communications", []).append(
                (
                    who(r["subject"]),
                    r["topic"]["text"],
                    payload,
                    original,
                    _text(r, "sender.display"),
                )
            )
    del by_id
    return {k: sorted(map(repr, v)) for k, v in content.items()}


def test_a_practice_exported_and_imported_into_a_fresh_one_exports_the_same_content(
    ledger: Ledger, fresh_config: StoreConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tell_story(ledger)
    first = tmp_path / "first"
    export_all(ledger, first)
    init_practice(fresh_config, monkeypatch)
    fresh = Ledger(fresh_config, **QUIET)
    try:
        importer = owner_of(fresh)
        exported = read_export(first)
        with pytest.raises(ImportRejected) as refused:
            import_fhir(importer, exported, None, "first")
        # Only what the record cannot hold is refused: secure messages and amendment letters.
        lines = refused.value.report.lines()
        assert lines and all("Communication/" in line for line in lines), lines
        report = import_fhir(importer, exported, None, "first", accept_valid=True)
        assert report.written and report.accepted == report.items - len(lines)
        second = tmp_path / "second"
        export_all(fresh, second)
        assert clinical_content(second) == clinical_content(first)

        again = import_fhir(importer, exported, None, "first", accept_valid=True)
        assert again.written and again.created == ()
        third = tmp_path / "third"
        export_all(fresh, third)
        assert clinical_content(third) == clinical_content(first)
    finally:
        fresh.close()
