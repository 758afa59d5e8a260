"""Errors under ``/fhir`` as FHIR OperationOutcome resources (the FHIR REST API and the Bulk Data
IG expect them there); the rest of the API keeps RFC 9457 problems (api/errors.py).

Every error is still made once, as a problem, by the one mapping in ``api/errors.py``; this
middleware rewrites a problem answer to a path under ``/fhir`` into the same words as an
OperationOutcome (``application/fhir+json``), so status codes and details cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import PROBLEM_JSON

FHIR_JSON = "application/fhir+json"
PREFIX = "/fhir"
# HTTP status -> FHIR issue type (http://hl7.org/fhir/R4/valueset-issue-type.html).
ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-costly",
    422: "processing",
    429: "throttled",
    431: "too-costly",
}


def operation_outcome(problem: dict[str, Any]) -> dict[str, Any]:
    """The OperationOutcome saying what ``problem`` (an RFC 9457 body) says: its type as the
    issue's coding, its title as the text, its detail as the diagnostics."""
    status = int(problem.get("status") or 500)
    issue: dict[str, Any] = {
        "severity": "error" if status < 500 else "fatal",
        "code": ISSUE_CODE.get(status, "exception"),
        "details": {
            "coding": [{"system": "urn:chartledger:problem", "code": _slug(problem)}],
            "text": str(problem.get("title", "")),
        },
    }
    if problem.get("detail"):
        issue["diagnostics"] = str(problem["detail"])
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _slug(problem: dict[str, Any]) -> str:
    return str(problem.get("type", "about:blank")).rpartition(":")[2] or "internal"


class FhirOutcomes:
    """ASGI middleware: a problem answer under ``/fhir`` goes out as an OperationOutcome."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # a problem's start, held until its body is read
        body = bytearray()

        async def sending(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                kind = MutableHeaders(raw=message["headers"]).get("content-type", "")
                if kind.startswith(PROBLEM_JSON):
                    held = message
                    return
            elif message["type"] == "http.response.body" and held is not None:
                body.extend(message.get("body", b""))
                if message.get("more_body"):
                    return
                await _send_outcome(send, held, bytes(body))
                return
            await send(message)

        await self.app(scope, receive, sending)


async def _send_outcome(send: Send, start: Message, problem_bytes: bytes) -> None:
    try:
        problem = json.loads(problem_bytes)
    except ValueError:
        problem = {"status": start["status"], "title": "Error"}
    if not isinstance(problem, dict):
        problem = {"status": start["status"], "title": "Error"}
    problem.setdefault("status", start["status"])
    out = json.dumps(operation_outcome(problem)).encode()
    headers = MutableHeaders(raw=list(start["headers"]))
    headers["content-type"] = FHIR_JSON
    headers["content-length"] = str(len(out))
    await send({**start, "headers": headers.raw})
    await send({"type": "http.response.body", "body": out})
