"""Bad input cannot hurt the server (issue 17): bodies over their limit (a setting: uploads
50 MiB, the rest 1 MiB) are 413, header fields over 16 KiB are 431, JSON nested deeper than 64 in
a body or a query value is 400, and an SMS backup declaring entities is refused in every
encoding. Each refusal is a problem document and writes nothing; each is played over the real
app on both stores, and the header and body bounds over a real ``chartledger serve`` too."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as chartledger
from api.client import Client
from api.schemas import PatientIn
from tests.e2e.conftest import JOB_EVENTS, Practice, add_member, finished_job, served

FIXTURES = Path(__file__).parent.parent / "fixtures" / "imports"
MIB = 1_048_576
JSON = {"content-type": "application/json"}


def patient_json() -> dict[str, str]:
    return {
        "mrn": "MRN-17",
        "given_name": "Ada",
        "family_name": "Quill",
        "birth_date": "1970-01-02",
        "sex": "female",
    }


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def asgi_post(
    practice: Practice, client: Client, query: str, body: bytes, path: str, media: bytes
) -> tuple[int, dict[str, object]]:
    """POST straight to the app (the same app the test client calls): status and JSON body."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
        "query_string": query.encode(), "client": ("testclient", 50000), "server": None,
        "headers": [
            (b"authorization", f"Bearer {client.token}".encode()),
            (b"content-type", media),
            (b"content-length", str(len(body)).encode()),
        ],
    }  # fmt: skip
    sent: list[dict[str, object]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, object]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    asyncio.run(practice.http.app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(status), json.loads(answer)  # type: ignore[call-overload]


def as_member(practice: Practice, client: Client) -> TestClient:
    raw = practice.http_client()
    raw.headers["Authorization"] = f"Bearer {client.token}"
    return raw


def is_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"] == f"urn:chartledger:problem:{slug}"
    return body  # type: ignore[no-any-return]


def pdf(size: int) -> bytes:
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    tail = b"\n%%EOF\n"
    filler = b"\x00\x17\xff" * size
    return head + filler[: size - len(head) - len(tail)] + tail


def test_a_two_megabyte_scan_is_stored_and_bodies_over_their_limit_are_413(
    practice: Practice,
) -> None:
    owner = practice.owner()
    clinician = as_member(
        practice, add_member(practice, owner, "casey", "Casey", "clinician").login()
    )
    scan = pdf(2_000_000)
    stored = clinician.post(
        "/documents",
        params={"filename": "scan.pdf", "media_type": "application/pdf"},
        content=scan,
        headers={"content-type": "application/octet-stream"},
    )
    assert stored.status_code == 201, stored.text
    assert stored.json()["size"] == len(scan)

    # Anything else keeps the small limit: a 2 MB JSON body, declared or streamed, is refused
    # and nothing is written.
    before = practice.leaves()
    big = {**patient_json(), "mrn": "M" * (2 * MIB)}
    is_problem(clinician.post("/patients", json=big), 413, "too-large")

    def chunks() -> Iterator[bytes]:
        body = httpx.Request("POST", "/", json=big).content
        for at in range(0, len(body), 64 * 1024):
            yield body[at : at + 64 * 1024]

    streamed = clinician.post("/patients", content=chunks(), headers=JSON)
    is_problem(streamed, 413, "too-large")
    assert practice.leaves() == before


def test_the_limits_are_settings_and_an_upload_over_its_limit_writes_nothing(
    practice: Practice,
) -> None:
    owner = practice.owner()
    smaller = dataclasses.replace(practice.settings, max_upload_bytes=300_000, max_body_bytes=500)
    with TestClient(create_app(smaller), raise_server_exceptions=False) as http:
        raw = TestClient(http.app, raise_server_exceptions=False)
        raw.headers["Authorization"] = f"Bearer {owner.token}"
        before = practice.leaves()
        upload = {"filename": "scan.pdf", "media_type": "application/pdf"}
        refused = raw.post("/documents", params=upload, content=pdf(300_001))
        body = is_problem(refused, 413, "too-large")
        assert "300000 bytes" in str(body["detail"])
        is_problem(raw.post("/imports/labs", content=b"MSH|" * 100_000), 413, "too-large")
        is_problem(
            raw.post("/patients", json={**patient_json(), "mrn": "M" * 600}), 413, "too-large"
        )
        # A JSON body is never a file: the small limit, even where uploads go.
        json_upload = raw.post("/documents", params=upload, content=b"[" + b" " * 600, headers=JSON)
        is_problem(json_upload, 413, "too-large")
        assert practice.leaves() == before
        assert raw.post("/documents", params=upload, content=pdf(299_000)).status_code == 201
        assert raw.post("/patients", json=patient_json()).status_code == 201


def test_header_fields_over_their_bound_are_431(practice: Practice) -> None:
    http = practice.http_client()
    body = is_problem(
        http.get("/health", headers={"x-pad": "a" * 20_000}), 431, "headers-too-large"
    )
    assert "a" * 100 not in str(body)
    many = {f"x-pad-{n}": "b" * 100 for n in range(200)}  # 200 small fields add up as well
    is_problem(http.get("/health", headers=many), 431, "headers-too-large")
    assert http.get("/health", headers={"x-pad": "a" * 8_000}).status_code == 200


@pytest.mark.parametrize("levels", [65, 4_000, 100_000])
def test_json_nested_too_deep_is_a_400_in_a_body_or_a_query_and_never_a_500(
    practice: Practice, levels: int
) -> None:
    owner = practice.owner()
    raw = as_member(practice, owner)
    before = practice.leaves()
    # The column map of a patient import, the query value the issue found answering 500.
    # httpx sends no URL over 64 KiB, so the longest goes to the app as an ASGI call.
    mapping = quote('{"columns": ' + deep(levels) + "}")
    csv = (FIXTURES / "patients_good.csv").read_bytes()
    status, problem = asgi_post(
        practice, owner, f"mapping={mapping}", csv, "/imports/patients", b"text/csv"
    )
    assert (status, problem["type"]) == (400, "urn:chartledger:problem:too-deep")
    # A JSON body, on a small route and on an upload route alike.
    nested = deep(levels).encode()
    is_problem(raw.post("/patients", content=nested, headers=JSON), 400, "too-deep")
    plus_json = {"content-type": "application/merge-patch+json"}
    is_problem(raw.post("/patients", content=nested, headers=plus_json), 400, "too-deep")
    upload = raw.post("/documents", params={"filename": "x.json"}, content=nested, headers=JSON)
    is_problem(upload, 400, "too-deep")
    # Brackets inside a string are text, not nesting.
    shallow = {**patient_json(), "given_name": deep(levels)[:200]}
    assert raw.post("/patients", json=shallow).status_code == 201
    assert practice.leaves() > before


def test_the_import_cli_refuses_a_column_map_nested_too_deep_in_one_line(
    practice: Practice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deep_map = tmp_path / "map.json"
    deep_map.write_text('{"columns": ' + deep(100_000) + "}")
    before = practice.leaves()
    capsys.readouterr()
    args = ["import", "patients", "--by", practice.owner_id, "--map", str(deep_map)]
    code = chartledger([*args, str(FIXTURES / "patients_good.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "nests deeper than 64 levels" in err, err
    assert practice.leaves() == before


def over_a_socket(url: str, target: str) -> tuple[int, bytes]:
    """POST ``target`` as written (no client library's URL length cap): status and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as s:
        s.sendall(
            f"POST {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 1\r\n"
            "Connection: close\r\n\r\nx".encode()
        )
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def sms_with_entity(encoding: str, codec: str) -> bytes:
    text = (
        f'<?xml version="1.0" encoding="{encoding}"?>\n'
        '<!DOCTYPE smses [<!ENTITY e "expanded text">]>\n'
        '<smses count="1"><sms address="+15551230001" date="1795000000000" type="1" '
        'body="&e;&e;&e;"/></smses>\n'
    )
    return text.encode(codec)


@pytest.mark.parametrize(
    ("encoding", "codec"),
    [
        ("UTF-16", "utf-16"),  # a BOM, little-endian here
        ("UTF-16", "utf-16-be"),  # no BOM: expat reads the byte order from "<?"
        ("UTF-8", "utf-8"),
        ("ISO-8859-1", "latin-1"),
    ],
)
def test_an_sms_backup_declaring_an_entity_is_refused_in_any_encoding(
    practice: Practice, encoding: str, codec: str
) -> None:
    owner = practice.owner()
    patient = owner.register_patient(PatientIn(**patient_json()))  # type: ignore[arg-type]
    raw = as_member(practice, owner)
    before = practice.leaves()
    refused = raw.post(
        "/imports/sms",
        params={"patient_id": str(patient.patient_id)},
        content=sms_with_entity(encoding, codec),
        headers={"content-type": "application/xml"},
    )
    job = finished_job(raw, refused)
    body = job["error"]
    assert job["state"] == "failed" and isinstance(body, dict)
    assert (body["status"], body["type"]) == (422, "urn:chartledger:problem:import-rejected")
    assert body["report"]["rejections"] == [
        {
            "location": "file",
            "reasons": ["declares a DOCTYPE or entities, which an export never does"],
        }
    ]
    assert "expanded text" not in str(job)
    assert practice.leaves() == before + JOB_EVENTS  # the job's start and end only
    # The same export without its DTD, in the same encoding, is read and written.
    plain = sms_with_entity(encoding, codec).decode(codec)
    plain = plain.replace('<!DOCTYPE smses [<!ENTITY e "expanded text">]>\n', "")
    plain = plain.replace("&e;&e;&e;", "Friday works")
    accepted = raw.post(
        "/imports/sms",
        params={"patient_id": str(patient.patient_id)},
        content=plain.encode(codec),
        headers={"content-type": "application/xml"},
    )
    result = finished_job(raw, accepted)["result"]
    assert isinstance(result, dict) and result["accepted"] == 1


def test_a_served_api_bounds_headers_bodies_and_nesting_before_anything_else(
    practice: Practice,
) -> None:
    """Over a real ``chartledger serve``, where uvicorn's own parser is in front: one server
    per store for every case (starting its two workers is most of the time, 5 to 25 s on a
    busy two-core machine)."""
    env = {
        **os.environ,
        "CHARTLEDGER_POOL_SIZE": "4",  # a shared PostgreSQL has few connections to spare
        "CHARTLEDGER_MAX_UPLOAD_BYTES": "200000",
    }
    with served(env) as url, httpx.Client(base_url=url, timeout=60) as http:
        # The case: one 1,000,000-byte header, which uvicorn's parser takes.
        is_problem(
            http.get("/health", headers={"x-pad": "a" * 1_000_000}), 431, "headers-too-large"
        )
        assert http.get("/health").status_code == 200

        upload = {"filename": "scan.pdf"}
        declared = http.post("/documents", params=upload, content=pdf(200_001))
        is_problem(declared, 413, "too-large")

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(5):
                yield b"\0" * 50_000

        streamed = http.post("/documents", params=upload, content=chunks())
        is_problem(streamed, 413, "too-large")

        mapping = {"mapping": '{"columns": ' + deep(4_000) + "}"}
        is_problem(http.post("/imports/patients", params=mapping, content=b"x"), 400, "too-deep")
        # A URL of 600 KB: uvicorn's parser refuses it itself (URLs over 64 KiB), still a 400.
        status, _ = over_a_socket(url, "/imports/patients?mapping=" + quote(deep(100_000)))
        assert status == 400
        nested = deep(100_000).encode()
        is_problem(http.post("/patients", content=nested, headers=JSON), 400, "too-deep")
        # Within the bounds, the request reaches authentication.
        assert http.post("/documents", params=upload, content=pdf(1_000)).status_code == 401


def test_the_openapi_states_each_bound_on_the_routes_it_applies_to(practice: Practice) -> None:
    spec = practice.http.get("/openapi.json").json()
    upload = spec["paths"]["/documents"]["post"]["responses"]
    assert "52428800 bytes" in upload["413"]["description"]
    email = spec["paths"]["/threads/{thread_id}/email"]["post"]["responses"]
    assert "52428800 bytes" in email["413"]["description"]  # an email, attachments and all
    assert "application/problem+json" in upload["413"]["content"]
    patients = spec["paths"]["/patients"]["post"]["responses"]
    assert "1048576 bytes" in patients["413"]["description"]
    assert "400" in spec["paths"]["/imports/patients"]["post"]["responses"]
    operations = [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]
    assert all("431" in o["responses"] for _, _, o in operations)
    assert all("413" in o["responses"] for _, _, o in operations if "requestBody" in o)
    assert "413" not in spec["paths"]["/health"]["get"]["responses"]
