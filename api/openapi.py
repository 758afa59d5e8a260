"""The OpenAPI document, with every problem a route can answer (issue 17: it tells the truth).

FastAPI documents a route's success and, for a route with parameters, a 422 in its own shape;
the app answers every error as an RFC 9457 problem (``api/errors.py``), with statuses FastAPI
never sees. Rather than each route listing them by hand (and a new route forgetting), the
document is finished here, once, from what each operation takes:

- every route: 400 (malformed or too deeply nested input), 431 (headers too large, with the
  bound's figure) and 503 (the store unavailable, busy or out of space, with Retry-After);
- a route that needs a session (the bearer scheme): 401 and 403;
- a route naming a record (a path parameter, a query parameter ending ``_id``, or a body, whose
  ids are looked up): 404;
- a route with a body: 413 (with the body limit's figure for its path), 415 and 422;
- a write (POST, PUT, PATCH, DELETE): 409.

A required body of raw bytes is declared non-empty (FastAPI refuses an empty one as missing).

Statuses peculiar to a few routes (429 of the logins, 502 of the notices) are declared by those
routes (``responses=problems(429)``); every error status declared, either way, gets the problem
schema as ``application/problem+json``, FastAPI's own 422 schema included (it is never sent).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from api.errors import PROBLEM_JSON
from api.fhir_outcome import FHIR_JSON
from api.importing_schemas import ImportReportOut
from api.limits import Limits

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
METHODS = WRITES | {"GET", "HEAD", "OPTIONS", "TRACE"}
COMPONENTS = "#/components/schemas/"

# What each status means, as the document says it.
DESCRIPTIONS = {
    400: "Malformed request (not JSON, nested too deeply) or refused by a domain rule",
    401: "No valid session (or wrong credentials)",
    403: "The caller may not do this (role, care relationship, break-glass, policy)",
    404: "No record with that id",
    409: "The record's state does not allow this, or it changed meanwhile",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request (each field named, never its value)",
    429: "Too many failed attempts: wait Retry-After seconds",
    431: "Request headers too large",
    502: "An outside service (the outbox) refused",
    503: "The store is unavailable, busy or out of space: nothing was written; try again later",
}

# Headers the app always sends with a status (api/errors.py).
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer"}},
    429: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "seconds to wait before trying again",
        }
    },
    503: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "seconds to wait before trying again",
        }
    },
}


# The shape api/fhir_outcome.py sends (a FHIR R4 OperationOutcome, one issue).
OPERATION_OUTCOME: dict[str, Any] = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome: the problem's status, kind, title and detail",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                    "details": {"type": "object"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}


class ValidationErrorOut(BaseModel):
    """Where a field is invalid and what kind of error, never the value."""

    loc: list[str]
    msg: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document; ``errors`` and ``report`` are this API's extensions."""

    model_config = ConfigDict(extra="allow")  # RFC 9457 §3.2: extension members

    type: str = Field(description="a URI naming the kind of problem (urn:chartledger:problem:*)")
    title: str
    status: int = Field(ge=100, le=599)
    detail: str | None = None
    instance: str | None = None
    errors: list[ValidationErrorOut] | None = Field(
        default=None, description="for an invalid request: each invalid field"
    )
    report: ImportReportOut | None = Field(
        default=None, description="for a rejected import: every rejection, by location and rule"
    )


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer ``statuses`` beyond what it depends on."""
    return {status: {"description": DESCRIPTIONS[status]} for status in statuses}


def install(app: FastAPI, limits: Limits | None = None) -> None:
    """Finish ``app``'s OpenAPI document (built once, on first use) as the module says, with
    the figures of the request ``limits`` the app enforces (``api/limits.py``)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = declare(FastAPI.openapi(app), limits)
        return app.openapi_schema

    app.openapi = document  # type: ignore[method-assign]


def declare(schema: dict[str, Any], limits: Limits | None = None) -> dict[str, Any]:
    """``schema`` with the problems each operation can answer, and the Problem model."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template=COMPONENTS + "{model}")
    for name, definition in problem.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["Problem"] = problem
    components["OperationOutcome"] = OPERATION_OUTCOME
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            if method.upper() not in METHODS:
                continue  # "parameters", "summary": not an operation
            _raw_bodies_not_empty(operation)
            responses = operation.setdefault("responses", {})
            statuses = statuses_of(method, operation)
            for status in sorted(statuses):
                responses.setdefault(str(status), {"description": DESCRIPTIONS[status]})
            if limits is not None:
                _with_figures(responses, limits, method, path)
            # Under /fhir the same errors go out as OperationOutcomes (api/fhir_outcome.py).
            error = (FHIR_JSON, "OperationOutcome") if path.startswith("/fhir/") else None
            for code, response in responses.items():
                if code[0] in "45":
                    media, model = error or (PROBLEM_JSON, "Problem")
                    response["content"] = {media: {"schema": {"$ref": COMPONENTS + model}}}
                    if int(code) in HEADERS:
                        response["headers"] = HEADERS[int(code)]
    # FastAPI's own 422 shape, now referenced by nothing: the app never sends it.
    for unused in ("HTTPValidationError", "ValidationError"):
        if not _referenced(schema, COMPONENTS + unused):
            components.pop(unused, None)
    return schema


def _with_figures(responses: dict[str, Any], limits: Limits, method: str, path: str) -> None:
    """The bounds' own figures in the descriptions of the statuses they answer."""
    responses["431"]["description"] = f"Header fields over {limits.max_header_bytes} bytes in all"
    if "413" in responses:
        limit = limits.body_limit(method.upper(), path)
        responses["413"]["description"] = f"Body over {limit} bytes"


def statuses_of(method: str, operation: dict[str, Any]) -> set[int]:
    """The error statuses an operation can answer, from what it takes (the module's list)."""
    where = {p.get("in") for p in operation.get("parameters", [])}
    ids = any(
        p.get("in") == "query" and p["name"].endswith("_id")
        for p in operation.get("parameters", [])
    )
    body = "requestBody" in operation
    statuses = {400, 431, 503}
    if operation.get("security"):
        statuses |= {401, 403}
    if "path" in where or body or ids:
        statuses.add(404)
    if body:
        statuses |= {413, 415, 422}
    if where:
        statuses.add(422)
    if method.upper() in WRITES:
        statuses.add(409)
    return statuses


def _raw_bodies_not_empty(operation: dict[str, Any]) -> None:
    """A required body taken as raw bytes: FastAPI answers an empty one as missing (422)."""
    body = operation.get("requestBody", {})
    if not body.get("required"):
        return
    for media in body.get("content", {}).values():
        schema = media.get("schema", {})
        if schema.get("type") == "string" and "contentMediaType" in schema:
            schema.setdefault("minLength", 1)


def _referenced(node: Any, ref: str) -> bool:
    if isinstance(node, dict):
        return node.get("$ref") == ref or any(_referenced(v, ref) for v in node.values())
    if isinstance(node, list):
        return any(_referenced(v, ref) for v in node)
    return False
