"""Response headers (issue 17), over the real app on both stores: a chart, an export file and a
production bundle, and every kind of problem (401, 403, 404, 405, 413, 422, 500), carry
``Cache-Control: no-store``, nosniff, frame protection and no referrer, and downloads carry no
validators (ETag, Last-Modified) for a cache to keep them by; /docs still works."""

from __future__ import annotations

from uuid import uuid4

import httpx

from api.hold_schemas import HoldIn, ScopeIn
from tests.e2e.conftest import Practice
from tests.e2e.test_clinical import ada, glucose, in_care, staffed

STRICT = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}


def assert_protected(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} ({response.status_code})"
    got = {name: response.headers.get(name) for name in STRICT}
    assert got == STRICT, where
    assert "etag" not in response.headers and "last-modified" not in response.headers, where


def test_phi_responses_and_downloads_are_not_cached_sniffed_framed_or_referred(
    practice: Practice,
) -> None:
    owner, casey, risk = staffed(practice)
    patient = casey.register_patient(ada()).patient_id
    in_care(owner, patient, casey)
    casey.record_lab(glucose(patient))

    chart = casey.request("GET", f"/patients/{patient}/chart", params={"purpose": "TREAT"})
    assert chart.status_code == 200 and chart.json()["entries"]
    assert_protected(chart)

    manifest = risk.export_ehi(patient)
    export_id = manifest["extension"]["https://chartledger.local/fhir/ehi-export"]["exportId"]
    for name in ("manifest.json", "Patient.ndjson", "native/records.msgpack"):
        download = risk.request("GET", f"/exports/{export_id}/{name}")
        assert download.status_code == 200 and download.content
        assert_protected(download)

    matter = risk.open_matter("Doe v. Practice", "CV-2026-21")
    risk.place_hold(matter.matter_id, HoldIn(name="records", scope=ScopeIn(patients=[patient])))
    produced = risk.produce(matter.matter_id)
    bundle = risk.request("GET", f"/productions/{produced['production_id']}/bundle")
    assert bundle.status_code == 200 and bundle.content.startswith(b"PK")
    assert_protected(bundle)
    # Asked for a range with the validator FileResponse computes internally: still no ETag.
    ranged = risk.request(
        "GET", f"/productions/{produced['production_id']}/bundle", headers={"Range": "bytes=0-1"}
    )
    assert ranged.status_code == 206 and ranged.content == b"PK"
    assert_protected(ranged)


def test_every_kind_of_problem_carries_the_headers(practice: Practice) -> None:
    _, casey, _ = staffed(practice)
    http = practice.http_client()
    bearer = {"Authorization": f"Bearer {casey.token}"}
    answers = {
        401: http.get(f"/patients/{uuid4()}/chart"),
        403: http.post("/exports", json={"all": True}, headers=bearer),
        404: http.get(f"/patients/{uuid4()}/chart", headers=bearer),
        405: http.delete("/health"),
        413: http.post("/patients", content=b"x" * (practice.settings.max_body_bytes + 1)),
        422: http.post("/patients", json={"mrn": 7}, headers=bearer),
    }
    for status, response in answers.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert_protected(response)

    # An unexpected error is answered by Starlette's outermost error middleware: the headers
    # are set outside it. A route that fails, added to the practice's own app for the test.
    def failing() -> None:
        raise RuntimeError("unexpected")

    practice.http.app.add_api_route("/test-only-failure", failing)  # type: ignore[attr-defined]
    crashed = http.get("/test-only-failure")
    assert crashed.status_code == 500
    assert crashed.json()["type"].endswith(":internal")
    assert_protected(crashed)


def test_the_interactive_docs_still_work_and_cannot_be_framed(practice: Practice) -> None:
    http = practice.http_client()
    docs = http.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    schema = http.get("/openapi.json")
    assert schema.status_code == 200 and schema.json()["info"]["title"] == "Chartledger"
    for response in (docs, schema, http.get("/redoc")):
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        # Swagger UI runs inline and CDN scripts: the API's "load nothing" CSP is not on it.
        assert "default-src" not in response.headers["content-security-policy"]
