"""The OpenAPI document tells the truth about errors (issue 17): each operation declares every
status it can answer with the problem it sends, ``application/problem+json`` with the Problem
schema, worked out from what the operation takes (``api/openapi.py``), for routes added later
too; and what the app actually sends for a refusal is declared and fits that schema."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

import jsonschema_rs
from fastapi import Body, FastAPI

from api import openapi
from api.deps import CurrentUser
from api.errors import PROBLEM_JSON
from api.fhir_outcome import FHIR_JSON
from api.routing import Router
from tests.e2e.conftest import Practice

PROBLEM = {"$ref": "#/components/schemas/Problem"}
OUTCOME = {"$ref": "#/components/schemas/OperationOutcome"}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def test_every_error_an_operation_declares_is_a_problem(practice: Practice) -> None:
    document = practice.http.app.openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    problem = document["components"]["schemas"]["Problem"]
    assert problem["required"] == ["type", "title", "status"]
    assert {"detail", "instance", "errors", "report"} <= set(problem["properties"])
    for method, path, operation in operations(document):
        responses = operation["responses"]
        errors = {code: r for code, r in responses.items() if code[0] in "45"}
        assert {"400", "431", "503"} <= set(errors), (method, path)
        # Under /fhir the same errors are FHIR OperationOutcomes (docs/EHI_EXPORT.md §9).
        fhir = path.startswith("/fhir/")
        media, schema = (FHIR_JSON, OUTCOME) if fhir else (PROBLEM_JSON, PROBLEM)
        for code, response in errors.items():
            assert response["content"] == {media: {"schema": schema}}, (method, path, code)
        if operation.get("security"):
            assert {"401", "403", "503"} <= set(errors), (method, path)
            assert "WWW-Authenticate" in responses["401"]["headers"]
        if "{" in path or "requestBody" in operation:
            assert "404" in errors, (method, path)
        if "requestBody" in operation:
            assert {"413", "415", "422"} <= set(errors), (method, path)
        if method in {"POST", "PUT", "DELETE"}:
            assert {"409", "503"} <= set(errors), (method, path)
    login = document["paths"]["/auth/login"]["post"]["responses"]
    assert {"401", "429"} <= set(login) and "Retry-After" in login["429"]["headers"]


def test_a_route_added_later_is_declared_as_what_it_takes() -> None:
    router = Router()

    @router.post("/widgets/{widget_id}/polish")
    def polish(widget_id: UUID, principal: CurrentUser, note: Annotated[str, Body()]) -> None:
        """A route no one declared any error for."""

    @router.get("/widgets")
    def widgets() -> list[str]:
        return []

    app = FastAPI()
    app.include_router(router)
    openapi.install(app)
    paths = app.openapi()["paths"]
    declared = set(paths["/widgets/{widget_id}/polish"]["post"]["responses"])
    assert declared == {
        *("200", "400", "401", "403", "404", "409", "413", "415", "422", "431", "503")
    }
    assert set(paths["/widgets"]["get"]["responses"]) == {"200", "400", "431", "503"}


def test_what_the_app_sends_for_a_refusal_is_declared_and_fits_the_problem_schema(
    practice: Practice,
) -> None:
    document = practice.http.app.openapi()
    problem = jsonschema_rs.Draft202012Validator({**PROBLEM, "components": document["components"]})
    owner = practice.owner()
    http = practice.http_client()
    signed_in = {"Authorization": f"Bearer {owner.token}"}
    refusals = [
        ("GET", "/patients/{patient_id}/chart", {}, 401),  # no session
        ("GET", "/patients/{patient_id}/chart", signed_in, 404),  # no such patient
        ("POST", "/patients", signed_in, 422),  # no body
        ("POST", "/auth/login", {}, 401),  # wrong credentials
    ]
    for method, path, headers, status in refusals:
        url = path.replace("{patient_id}", str(uuid4()))
        body = {"username": "olive", "password": "not-the-password"} if "login" in path else None
        response = http.request(method, url, headers=headers, json=body)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == PROBLEM_JSON
        assert problem.is_valid(response.json()), response.json()
        method_responses = document["paths"][path][method.lower()]["responses"]
        assert str(status) in method_responses, (method, path, status)


JOB_ROUTES = [
    ("post", "/matters/{matter_id}/productions"),
    ("post", "/exports"),
    ("post", "/imports/patients"),
    ("post", "/imports/labs"),
    ("post", "/imports/email"),
    ("post", "/imports/sms"),
    ("post", "/backups"),
]


def test_every_route_starting_a_job_declares_202_with_the_job_and_its_location(
    practice: Practice,
) -> None:
    document = practice.http.app.openapi()
    job = {"$ref": "#/components/schemas/JobOut"}
    for method, path in JOB_ROUTES:
        responses = document["paths"][path][method]["responses"]
        assert "201" not in responses and "200" not in responses, path
        accepted = responses["202"]
        assert accepted["content"]["application/json"]["schema"] == job, path
        assert "Location" in accepted["headers"], path
    jobs = document["paths"]["/jobs/{job_id}"]
    assert jobs["get"]["responses"]["200"]["content"]["application/json"]["schema"] == job
    assert {"get", "delete"} == set(jobs)
    states = document["components"]["schemas"]["JobOut"]["properties"]["state"]["enum"]
    assert states == ["queued", "running", "succeeded", "failed", "cancelled"]
