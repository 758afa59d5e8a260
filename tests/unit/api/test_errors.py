"""Every error is an RFC 9457 problem body, mapped in one place, and never echoes the input."""

from __future__ import annotations

from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import errors
from api.limits import Limits, RequestLimits
from domain import errors as domain
from projections.reads import PatientNotFound

PHI = "Ada Quill, born 1970-01-01"


class Body(BaseModel):
    mrn: str
    count: int


def make_app(limit: int = 1_000) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.post("/echo")
    def echo(body: Body) -> dict[str, str]:
        return {"mrn": body.mrn}

    @app.get("/raise/{name}")
    def raise_(name: str) -> None:
        raise {
            "signed": domain.NoteAlreadySigned(f"note {uuid4()} is already signed"),
            "invalid": domain.InvalidEntry("given_name must be non-empty text"),
            "quantity": domain.InvalidQuantity("unit must be a UCUM unit"),
            "permitted": domain.NotPermitted("only an owner may change an owner"),
            "patient": PatientNotFound("no chart for patient x"),
            "login": errors.Unauthenticated("wrong credentials"),
            "locked": errors.TooManyAttempts("locked", retry_after=60),
            "boom": RuntimeError(PHI),
        }[name]

    app.add_middleware(RequestLimits, limits=Limits(max_body_bytes=limit))
    return app


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(), raise_server_exceptions=False)


def is_problem(response, status: int) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("urn:chartledger:problem:")
    assert body["title"]
    return body


@pytest.mark.parametrize(
    ("name", "status", "slug"),
    [
        ("signed", 409, "note-already-signed"),
        ("invalid", 422, "invalid-entry"),
        ("quantity", 422, "invalid-quantity"),
        ("permitted", 403, "not-permitted"),
        ("patient", 404, "not-found"),
        ("login", 401, "unauthenticated"),
        ("locked", 429, "too-many-attempts"),
    ],
)
def test_each_domain_and_edge_error_has_its_status_and_type(
    client: TestClient, name: str, status: int, slug: str
) -> None:
    body = is_problem(client.get(f"/raise/{name}"), status)
    assert body["type"] == f"urn:chartledger:problem:{slug}"


def test_a_401_asks_for_a_bearer_token_and_a_429_says_when_to_retry(client: TestClient) -> None:
    assert client.get("/raise/login").headers["www-authenticate"] == "Bearer"
    assert client.get("/raise/locked").headers["retry-after"] == "60"


def test_an_unexpected_error_is_a_500_problem_that_says_nothing_of_it(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = is_problem(client.get("/raise/boom"), 500)
    assert "detail" not in body
    assert PHI not in caplog.text and "RuntimeError" in caplog.text


def test_a_validation_problem_names_the_fields_but_never_echoes_the_input(
    client: TestClient,
) -> None:
    body = is_problem(client.post("/echo", json={"mrn": PHI, "count": PHI}), 422)
    assert body["errors"][0]["loc"] == ["body", "count"]
    assert PHI not in str(body)


def test_malformed_json_is_a_400_problem(client: TestClient) -> None:
    headers = {"content-type": "application/json"}
    response = client.post("/echo", content=b'{"mrn": ', headers=headers)
    is_problem(response, 400)


def test_an_unknown_route_is_a_404_problem(client: TestClient) -> None:
    is_problem(client.get("/nowhere"), 404)
    is_problem(client.delete("/echo"), 405)


def test_an_oversized_body_is_refused_with_413_declared_or_streamed(client: TestClient) -> None:
    big = b'{"mrn": "' + b"x" * 2_000 + b'", "count": 1}'
    headers = {"content-type": "application/json"}
    is_problem(client.post("/echo", content=big, headers=headers), 413)

    def chunks():  # type: ignore[no-untyped-def]
        yield big[:600]
        yield big[600:]

    is_problem(client.post("/echo", content=chunks(), headers=headers), 413)
    assert client.post("/echo", json={"mrn": "M1", "count": 1}).json() == {"mrn": "M1"}


def test_every_domain_error_is_mapped() -> None:
    for name in dir(domain):
        cls = getattr(domain, name)
        if isinstance(cls, type) and issubclass(cls, domain.ChartError):
            assert errors.status_of(cls("x"))[0] < 500, name
