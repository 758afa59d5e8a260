"""FHIR Bulk Data export over HTTP (issue 19 #6; docs/EHI_EXPORT.md "Bulk Data API"), on both
stores, with the thin client (api/bulk_client.py): kick-off, polling (202 with X-Progress),
a manifest whose every URL is absolute and resolves, download, cancel (DELETE) leaving no files
and the status 404; ``_type`` and ``_since``; refusals as OperationOutcomes; the format's public
documentation (#1) in the manifest, the README and served without login."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.bulk_client import BulkData
from api.client import BadRequest, Forbidden, NotFound, Unauthorized
from api.jobs import JobProgress
from events.job_rows import TABLE
from projections.ehi_export import EXTENSION, file_name
from tests.e2e.conftest import Practice
from tests.e2e.test_clinical import ada, glucose, in_care, staffed
from tests.integration.test_ehi_export import fhir_model

KICK_OFF = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
FHIR_JSON = "application/fhir+json"


def urls_in(value: Any) -> Iterator[str]:
    """Every ``url`` anywhere in a manifest."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "url" and isinstance(item, str):
                yield item
            else:
                yield from urls_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from urls_in(item)


def outcome_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = response.json()
    severity = "error" if status < 500 else "fatal"
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == severity
    return body


@pytest.fixture
def jobs_held(practice: Practice) -> Iterator[threading.Event]:
    """Both job threads of the server busy until the event is set: a job started meanwhile
    stays queued, so its status can be seen running and it can be cancelled mid-way."""
    services = practice.http.app.state.services  # type: ignore[attr-defined]
    release = threading.Event()

    def hold(progress: JobProgress) -> dict[str, Any]:
        while not release.wait(0.02):
            progress.check()
        return {}

    held = [services.jobs.start("backup", UUID(practice.owner_id), hold) for _ in range(2)]
    yield release
    release.set()
    for job in held:
        while not services.jobs.get(job.job_id).finished:
            release.wait(0.02)


def test_bulk_data_export_kick_off_poll_download_cancel(
    practice: Practice, tmp_path: Path, jobs_held: threading.Event
) -> None:
    owner, casey, risk = staffed(practice)
    patient = casey.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.record_lab(glucose(patient))
    http = practice.http_client()
    bearer = {"Authorization": f"Bearer {risk.token}"}
    exports = practice.settings.store.home / "exports"

    # Without login: the CapabilityStatement and the format's documentation; nothing else.
    statement = http.get("/fhir/metadata")
    assert statement.status_code == 200 and statement.headers["content-type"] == FHIR_JSON
    fhir_model("CapabilityStatement").model_validate(statement.json())
    assert statement.json()["instantiates"] == [
        "http://hl7.org/fhir/uv/bulkdata/CapabilityStatement/bulk-data"
    ]
    docs = http.get("/docs/EHI_EXPORT.md")
    assert docs.status_code == 200 and docs.text.startswith("#")
    outcome_of(http.get("/fhir/$export", headers=KICK_OFF), 401)

    # Refusals, each an OperationOutcome, nothing started: no Prefer, an unknown type, a bad
    # _since, an unsupported parameter or output format, a clinician, an unknown patient.
    for params, headers in (
        ({}, {"Accept": FHIR_JSON}),
        ({"_type": "Patient,Spaceship"}, KICK_OFF),
        ({"_since": "yesterday"}, KICK_OFF),
        ({"_typeFilter": "Observation?code=1"}, KICK_OFF),
        ({"_outputFormat": "text/csv"}, KICK_OFF),
        ({}, {**KICK_OFF, "Accept": "text/html"}),
    ):
        answer = http.get("/fhir/Patient/$export", params=params, headers={**headers, **bearer})
        outcome_of(answer, 400)
    with pytest.raises(Forbidden):
        BulkData(casey).kick_off(patient)
    with pytest.raises(NotFound):
        BulkData(risk).kick_off(uuid4())
    assert not exports.exists() or not list(exports.iterdir())

    # Kick-off while both job threads are busy: polled, it is 202 with its progress; cancelled
    # (DELETE, 202), its status is then 404 and nothing of it is on disk.
    bulk = BulkData(risk)
    queued = bulk.kick_off(patient)
    assert queued.startswith("http://testserver/fhir/bulkstatus/")
    polled = http.get(queued, headers=bearer)
    assert polled.status_code == 202 and polled.headers["retry-after"] == "1"
    assert polled.headers["x-progress"]
    bulk.cancel(queued)
    outcome_of(http.get(queued, headers=bearer), 404)

    # An export whose server process died (its row names a process of this host that is gone,
    # set by raw SQL on the real jobs table): its status is the failure, as an OperationOutcome.
    lost = bulk.kick_off(patient)
    services = practice.http.app.state.services  # type: ignore[attr-defined]
    with services.ledger.db.write(lock=False) as c:
        gone = f"{services.jobs.host}:{2**22 + 7}"  # above Linux's largest process id
        c.execute(f"UPDATE {TABLE} SET worker = ? WHERE job_id = ?", (gone, lost.split("/")[-1]))
    failed = outcome_of(http.get(lost, headers=bearer), 500)
    assert failed["issue"][0]["details"]["coding"][0]["code"] == "job-interrupted"
    jobs_held.set()

    # The whole export, written and downloaded with the thin client.
    progress: list[str] = []
    manifest = bulk.wait(bulk.kick_off(patient), progress.append)
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    assert manifest["request"] == f"http://testserver/fhir/Patient/{patient}/$export?" + (
        "_outputFormat=application%2Ffhir%2Bndjson"
    )
    urls = list(urls_in(manifest))
    assert urls and all(u.startswith(("http://", "https://")) for u in urls), urls
    made = manifest["extension"][EXTENSION]
    assert made["documentation"] == "http://testserver/docs/EHI_EXPORT.md"
    assert {"relation": "describedby", "url": made["documentation"]} in manifest["link"]
    for url in urls:  # each resolves: the files with the token, the documentation without
        answer = http.get(url, headers=bearer)
        assert answer.status_code == 200, url
        if url.endswith(".ndjson"):
            assert answer.headers["content-type"] == "application/fhir+ndjson"
    out = tmp_path / "bulk"
    written = bulk.download(manifest, out)
    assert {p.name for p in written} >= {"Patient.ndjson", "Observation.ndjson", "README.md"}
    readme = (out / "README.md").read_text()
    assert "http://testserver/docs/EHI_EXPORT.md" in readme
    for output in manifest["output"]:
        lines = (out / file_name(output["url"], made["exportId"])).read_text().splitlines()
        assert len(lines) == output["count"]
    assert json.loads((out / "manifest.json").read_text()) == manifest

    # The export and each download are reads in the patient's access report, as POST /exports.
    actions = {(str(r.user_id), r.action) for r in risk.access_report(patient)}
    assert {(str(risk.me().user_id), "export"), (str(risk.me().user_id), "copy")} <= actions

    # A written export deleted: its files go, its status is 404, a second DELETE too.
    status_url = bulk.kick_off(None)
    everyone = bulk.wait(status_url)
    folder = exports / everyone["extension"][EXTENSION]["exportId"]
    assert folder.is_dir()
    bulk.cancel(status_url)
    assert not folder.exists()
    outcome_of(http.get(status_url, headers=bearer), 404)
    with pytest.raises(NotFound):
        bulk.cancel(status_url)
    with pytest.raises(Unauthorized):
        BulkData(practice.client()).status(status_url)

    # _type and _since: only those types, only what changed since.
    since = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    casey.record_lab(glucose(patient))
    filtered = bulk.wait(bulk.kick_off(patient, types=["Observation", "Patient"], since=since))
    counts = {o["type"]: o["count"] for o in filtered["output"]}
    assert counts == {"Observation": 1}, counts  # the new lab; the patient did not change
    typed = bulk.wait(bulk.kick_off(patient, types=["Patient"]))
    assert [o["type"] for o in typed["output"]] == ["Patient"]
    with pytest.raises(BadRequest):
        bulk.kick_off(patient, types=["Spaceship"])

    # POST /exports answers the same Bulk Data status (Content-Location), same absolute URLs.
    started = risk.request("POST", "/exports", json={"patient_id": str(patient)})
    posted = bulk.wait(started.headers["content-location"])
    assert all(u.startswith("http://testserver/") for u in urls_in(posted))
    assert posted == risk.wait_for_job(started.json())["result"]

    # Behind a proxy, CHARTLEDGER_PUBLIC_BASE_URL is the base of every URL handed out.
    public = "https://ehr.example.org/chart/"
    proxied = replace(practice.settings, public_base_url=public)
    with TestClient(create_app(proxied), raise_server_exceptions=False) as behind:
        answer = behind.get(f"/fhir/Patient/{patient}/$export", headers={**KICK_OFF, **bearer})
        location = answer.headers["content-location"]
        assert location.startswith(public + "fhir/bulkstatus/")
        polled = behind.get(location.removeprefix(public[:-1]), headers=bearer)
        while polled.status_code == 202:
            polled = behind.get(location.removeprefix(public[:-1]), headers=bearer)
        manifest = polled.json()
        assert manifest["request"] == f"{public}fhir/Patient/{patient}/$export"
        assert all(u.startswith(public) for u in urls_in(manifest)), manifest
        assert manifest["extension"][EXTENSION]["documentation"] == public + "docs/EHI_EXPORT.md"
