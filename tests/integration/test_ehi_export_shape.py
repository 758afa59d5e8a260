"""The EHI export's shape, checked the way a receiving system would (issue 19), on SQLite and
PostgreSQL, through the real export path of a practice with every kind of record (the demo
practice and tests/integration/test_ehi_export.py's story, a late check-in and a message about
two patients added): every resource of every export, one patient's and everyone's, validates
against the official FHIR R4 (4.0.1) JSON Schema (tests/fixtures/fhir_r4/README.md), and:

- every Period has start <= end (FHIR per-1), dates and instants compared at their precision;
- every reference resolves to a resource in the same export (a versioned one to the version
  there), or is an absolute URI; no attachment has a URL the export cannot resolve;
- one id, one content: a resource in several exports is the same in each (a part of a record
  shown to one patient is a resource of its own id, tagged SUBSETTED);
- one patient's export names no other patient, and names every clinician it references, by a
  Practitioner with the user's name and nothing of their login.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import jsonschema_rs
from fhir.resources.R4B import get_fhir_model_class

from domain import appointments as scheduling
from domain.base import user_subject
from domain.messages import Thread
from events.context import acting
from events.ledger import Ledger
from projections.ehi_export import RESOURCE_TYPES, ExportRequest, export
from projections.fhir.common import SUBSETTED
from projections.reads import Reader
from tests.integration.test_ehi_export import hl7_imported_lab, tell_story

SCHEMA = Path(__file__).resolve().parent.parent / "fixtures" / "fhir_r4" / "fhir.schema.json"
ABSOLUTE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S+")  # a URI with a scheme (http:, urn:, ...)
LATE = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)


@cache
def r4_schema() -> tuple[Any, dict[str, Any]]:
    """The R4 schema compiled once (0.3 s): its root picks the definition by resourceType."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    return jsonschema_rs.Draft6Validator(schema), schema["definitions"]


def r4_errors(resource: dict[str, Any]) -> list[str]:
    validator, definitions = r4_schema()
    if validator.is_valid(resource):
        return []
    # The root's oneOf says only "not valid": the resource's own definition says where.
    kind = resource.get("resourceType")
    one = jsonschema_rs.Draft6Validator(
        {"$ref": f"#/definitions/{kind}", "definitions": definitions}
    )
    return [f"{kind}/{resource.get('id')}: {e.message[:300]}" for e in one.iter_errors(resource)]


def read_export(folder: Path) -> dict[tuple[str, str], str]:
    """(type, id) -> the resource's NDJSON line, for every resource in the export."""
    manifest = json.loads((folder / "manifest.json").read_text())
    found: dict[tuple[str, str], str] = {}
    for output in manifest["output"]:
        assert output["type"] in RESOURCE_TYPES
        for line in (folder / output["url"]).read_text(encoding="ascii").splitlines():
            resource = json.loads(line)
            key = (resource["resourceType"], resource["id"])
            assert key not in found, f"{key} twice in one export"
            found[key] = line
    return found


def walk(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a resource, depth first."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k, v
            yield from walk(v, k)
    elif isinstance(value, list):
        for item in value:
            yield key, item
            yield from walk(item, key)


def _moment(text: str) -> datetime | date:
    if "T" not in text:
        return date.fromisoformat(text) if len(text) == 10 else date(int(text[:4]), 1, 1)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def period_problems(resource: dict[str, Any]) -> list[str]:
    """FHIR per-1 on every Period (any element named ``period`` or ``...Period``)."""
    problems = []
    for key, value in walk(resource):
        if not (key == "period" or key.endswith("Period")) or not isinstance(value, dict):
            continue
        if "start" in value and "end" in value:
            start, end = _moment(value["start"]), _moment(value["end"])
            if isinstance(start, datetime) != isinstance(end, datetime):
                start = start.date() if isinstance(start, datetime) else start
                end = end.date() if isinstance(end, datetime) else end
            if start > end:
                problems.append(f"{resource['resourceType']}/{resource['id']} {key}: {value}")
    return problems


def reference_problems(resource: dict[str, Any], ids: dict[tuple[str, str], str]) -> list[str]:
    """References that do not resolve within the export, and attachments with a URL that
    does not either (a relative ``Binary/x`` needs a base the export has not got)."""
    problems = []
    where = f"{resource['resourceType']}/{resource['id']}"
    for key, value in walk(resource):
        if key == "reference" and isinstance(value, str):
            if ABSOLUTE.fullmatch(value):
                continue
            parts = value.split("/")
            target = (parts[0], parts[1]) if len(parts) in (2, 4) else None
            if target not in ids:
                problems.append(f"{where} -> {value}: not in the export")
            elif len(parts) == 4:
                held = json.loads(ids[target]).get("meta", {}).get("versionId")
                if parts[2] != "_history" or parts[3] != held:
                    problems.append(f"{where} -> {value}: the export holds version {held}")
        attachment = isinstance(value, dict) and "contentType" in value
        if attachment and "url" in value and not ABSOLUTE.fullmatch(value["url"]):
            problems.append(f"{where}: attachment URL {value['url']} has no base")
        if attachment and "data" in value and "size" in value:
            assert len(base64.b64decode(value["data"])) == value["size"]
    return problems


def other_patients_named(line: str, patient: str, everyone: set[str]) -> set[str]:
    return {p for p in everyone - {patient} if p in line}


def test_every_resource_of_every_export_is_valid_r4_and_keeps_the_invariants(
    ledger: Ledger, tmp_path: Path
) -> None:
    from api.demo import DEMO_LOGINS, demo_totp_secret, load_demo
    from api.settings import Settings

    assert load_demo(ledger, Settings(store=ledger.config, pbkdf2_iterations=1_000), patients=3)
    story = tell_story(ledger)
    # A late arrival (checked in after the scheduled end), and a message about two patients
    # sent by one of them.
    start = LATE - timedelta(hours=1)
    days = scheduling.provider_days(
        ledger.repository.get, story.clinician, (start, start + timedelta(minutes=20))
    )
    late = scheduling.book(
        days.values(), patient_id=story.patient, provider_id=story.clinician, start=start,
        end=start + timedelta(minutes=20), reason="late arrival",
    )  # fmt: skip
    late[0].check_in(at=LATE)
    shared = Thread.start(
        kind="secure", topic="Carpool", patient_ids=[story.other_patient, story.patient],
        user_ids=[story.clinician],
    )  # fmt: skip
    shared.post(sender=f"patient:{story.other_patient}", body="We come together.", at=LATE)
    # A result imported from an HL7 message, which names the message's Document.
    message, imported = hl7_imported_lab(story)
    with acting(user_subject(story.clinician), "test"):
        ledger.save(*late, shared, message, imported)

    with ledger.db.read() as c:
        c.execute("SELECT subject FROM ledger_links WHERE seq = 1 AND subject LIKE 'patient:%'")
        everyone = {row[0].removeprefix("patient:") for row in c.fetchall()}
    assert len(everyone) == 5
    exports: dict[str | None, dict[tuple[str, str], str]] = {}
    for patient in sorted(everyone):
        out = tmp_path / f"one-{patient}"
        export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), UUID(patient), "t"), out)
        exports[patient] = read_export(out)
    export(ledger, ExportRequest(Reader(uuid4(), "HOPERAT"), None, "t"), tmp_path / "all")
    exports[None] = read_export(tmp_path / "all")

    problems: list[str] = []
    contents: dict[tuple[str, str], str] = {}
    for patient, found in exports.items():
        for key, line in found.items():
            resource = json.loads(line)
            problems += r4_errors(resource)
            problems += period_problems(resource)
            problems += reference_problems(resource, found)
            # One id, one content, across every export.
            if contents.setdefault(key, line) != line:
                problems.append(f"{key}: two contents under one id")
            if patient is not None and other_patients_named(line, patient, everyone):
                problems.append(f"{key}: names another patient in {patient}'s export")
        if patient is not None:
            assert ("Patient", patient) in found
    assert problems == [], "\n".join(problems[:20])

    # R4B too (fhir.resources' models), for everyone's export.
    for (kind, _), line in exports[None].items():
        get_fhir_model_class(kind).model_validate_json(line)

    mine = exports[str(story.patient)]
    # 3: the clinician's name is in the patient's own export; the practice is there.
    practitioner = json.loads(mine[("Practitioner", str(story.clinician))])
    assert practitioner["name"] == [{"text": "Casey Clinician"}]
    assert ("Organization", ledger.practice["practice_id"]) in mine
    # 2: the late check-in's encounter has no end and says it is not known.
    encounters = [json.loads(v) for (k, _), v in mine.items() if k == "Encounter"]
    [late_visit] = [e for e in encounters if e["reasonCode"] == [{"text": "late arrival"}]]
    assert late_visit["status"] == "unknown" and "end" not in late_visit["period"]
    # 8: the shared messages are subsets in the patient's export, whole in everyone's.
    parts = [
        json.loads(v)
        for (k, _), v in mine.items()
        if k == "Communication" and "subsetted" in v.lower()
    ]
    assert len(parts) == 2 and all(p["meta"]["tag"] == [SUBSETTED] for p in parts)
    whole = {i for (k, i) in exports[None] if k == "Communication"}
    assert not {p["id"] for p in parts} & whole
    # 7: US Core elements.
    kinds = {k for k, _ in mine}
    assert "MedicationRequest" in kinds and "MedicationStatement" not in kinds
    for line in mine.values():
        resource = json.loads(line)
        if resource["resourceType"] == "DocumentReference":
            assert resource["type"]["coding"] and resource["category"]
        if resource["resourceType"] == "Provenance":
            agent = resource["agent"][0]
            assert agent["type"]["coding"][0]["code"] == "author"
            assert "onBehalfOf" in agent or agent["who"]["reference"].startswith("Organization/")
        if resource["resourceType"] == "AuditEvent":
            assert all(a["type"]["coding"] for a in resource["agent"])
    # No login secret of any demo user reaches any export.
    text = "\n".join(line for found in exports.values() for line in found.values())
    for username, _, _, password in DEMO_LOGINS:
        assert password not in text
        assert base64.b32encode(demo_totp_secret(username)).decode() not in text
