"""``POST /imports/fhir`` with the thin client: an owner sends a ZIP of a Bulk Data export and
gets the report from the import's job; a clinician is refused; a broken NDJSON body is a 422
``import-rejected`` problem naming file, line and resource, and writes nothing of the import
(docs/IMPORTS.md §9.6); a body that is no export is refused before any job."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from api.client import Forbidden, NotFound, Unprocessable
from tests.e2e.conftest import JOB_EVENTS, Practice, add_member
from tests.e2e.test_care_relationships import one_refusal_written

US_CORE = Path(__file__).resolve().parent.parent / "fixtures" / "fhir" / "us-core"


def zipped(folder: Path) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"export/{path.name}")
    return out.getvalue()


def test_an_owner_imports_a_zipped_export_over_http(practice: Practice) -> None:
    owner = practice.owner()
    clinician = add_member(practice, owner, "casey", "Casey", "clinician").client()
    body = zipped(US_CORE)
    with pytest.raises(Forbidden):
        clinician.import_fhir(body)

    report = owner.import_fhir(body, source_name="us-core.zip")
    assert (report.written, report.items, report.rejected) == (True, 24, 0)
    assert report.kind == "fhir" and report.import_id is not None
    # The plain letter is a message of an imported thread, shown with its source times.
    threads = []
    for created in report.created:
        try:
            threads.append(owner.thread(created))
        except NotFound:
            continue  # a patient, a lab result, ...: not a thread
    (letter,) = [t for t in threads if t.kind == "imported"]
    (entry,) = letter.entries
    assert entry.kind == "imported" and entry.fields["resource_id"] == "letter-1"
    assert entry.original_times["sent"]["raw"] == "2024-04-02T10:15:30.25-04:00"
    assert entry.original_times["sent"]["offset"] == "-04:00"
    assert entry.original_times["received"]["precision"] == "day"
    # An imported thread is closed like any other to a clinician not in its patient's care:
    # refused (break-glass required), and the refusal is the one event it writes.
    one_refusal_written(
        practice, lambda: clinician.thread(letter.thread_id), "break-glass-required"
    )

    broken = (US_CORE / "Observation.ndjson").read_bytes() + b"not json\n"
    before = practice.leaves()
    with pytest.raises(Unprocessable) as refused:
        owner.import_fhir(broken, source="https://ehr.example.org/fhir", source_name="obs.ndjson")
    problem = refused.value.problem
    assert problem["type"] == "urn:chartledger:problem:import-rejected"
    rejections = problem["report"]["rejections"]
    locations = [r["location"] for r in rejections]
    assert "obs.ndjson line 6" in locations  # the line that is not JSON
    # The observations' patients are not in this body: each is named, with no values.
    assert "obs.ndjson line 1 (Observation/serum-glucose)" in locations
    assert practice.leaves() == before + JOB_EVENTS

    # A body that is no export, or names no source system: 422 before any job.
    before = practice.leaves()
    for body in (b"PK\x03\x04 broken", b'{"resourceType":"Patient"}\n'):
        with pytest.raises(Unprocessable) as refused:
            owner.import_fhir(body)
        assert refused.value.problem["type"] == "urn:chartledger:problem:invalid-entry"
    assert practice.leaves() == before
