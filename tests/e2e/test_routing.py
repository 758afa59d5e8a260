"""api/routing.py: a route whose caller is checked in the worker thread that runs it answers
as it did when the check was a dependency (same OpenAPI operation, same refusals, the caller's
refusal before a validation error), on both stores."""

from __future__ import annotations

import inspect
import threading
import uuid
from typing import Any

from fastapi import APIRouter, FastAPI

from api import errors
from api.client import Client
from api.deps import CurrentUser
from api.roles import Clinician
from api.routing import CALLER, Router, in_one_thread
from api.schemas import LabIn
from tests.e2e.conftest import Practice, add_member

HEADERS = {"Authorization": "Bearer not-a-session-token"}


def bearer(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


def _routes(router: APIRouter, seen: list[Any]) -> APIRouter:
    @router.post("/labs/{patient_id}", status_code=201)
    def record(patient_id: uuid.UUID, body: LabIn, principal: Clinician, note: str = "") -> dict:
        """Record a lab."""
        seen.append(threading.get_ident())
        return {"by": str(principal.user_id)}

    @router.delete("/sessions/mine", status_code=204)
    def end(principal: CurrentUser) -> None:
        seen.append(threading.get_ident())

    @router.get("/me")
    def me(principal: CurrentUser) -> dict:
        seen.append(threading.get_ident())
        return {"by": str(principal.user_id), "roles": list(principal.roles)}

    @router.get("/open")
    def open_to_all() -> dict:
        return {}

    return router


def test_the_openapi_document_is_the_same_as_with_the_check_as_a_dependency() -> None:
    documents = []
    for router in (APIRouter(), Router()):
        app = FastAPI()
        app.include_router(_routes(router, []))
        documents.append(app.openapi())
    # Router adds one thing: the Idempotency-Key header on each write (api/idempotency/).
    for path, method in (("/labs/{patient_id}", "post"), ("/sessions/mine", "delete")):
        operation = documents[1]["paths"][path][method]
        keys = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
        assert len(keys) == 1 and keys[0]["in"] == "header" and not keys[0]["required"]
        operation["parameters"].remove(keys[0])
        if not operation["parameters"]:
            del operation["parameters"]
        if "422" not in documents[0]["paths"][path][method]["responses"]:
            del operation["responses"]["422"]  # FastAPI's, for a route with a parameter
    assert documents[0] == documents[1]
    assert "HTTPBearer" in str(documents[1]["paths"]["/labs/{patient_id}"]["post"]["security"])


def test_only_sync_routes_naming_one_caller_are_wrapped() -> None:
    router = _routes(Router(), [])
    endpoints = {route.path: route.endpoint for route in router.routes}  # type: ignore[attr-defined]
    for path in ("/labs/{patient_id}", "/sessions/mine"):
        assert inspect.iscoroutinefunction(endpoints[path])
        parameters = inspect.signature(endpoints[path]).parameters
        assert CALLER in parameters and "principal" not in parameters
    assert not inspect.iscoroutinefunction(endpoints["/open"])

    async def already_async(principal: CurrentUser) -> None: ...

    assert in_one_thread(already_async) is already_async


def test_the_route_runs_with_the_checked_caller_in_a_worker_thread(practice: Practice) -> None:
    owner = practice.owner()
    seen: list[int] = []
    practice.http.app.include_router(_routes(Router(prefix="/routing-test"), seen))  # type: ignore[attr-defined]
    http = practice.http_client()
    answer = http.get("/routing-test/me", headers=bearer(owner))
    assert answer.status_code == 200
    assert answer.json() == {"by": str(owner.me().user_id), "roles": ["owner"]}
    assert http.delete("/routing-test/sessions/mine", headers=bearer(owner)).status_code == 204
    assert len(seen) == 2 and threading.get_ident() not in seen
    refused = http.get("/routing-test/me", headers=HEADERS)
    assert refused.status_code == 401 and len(seen) == 2  # refused before the route ran


def test_the_callers_refusal_outranks_a_validation_error(practice: Practice) -> None:
    """As when the check was a dependency: 401 without a session, 403 without the role, and
    the validation error only for a caller who may use the route; malformed JSON stays 400."""
    http = practice.http_client()
    bad = {"patient_id": "not-a-uuid"}
    refused = http.post("/labs", json=bad, headers=HEADERS)
    assert (refused.status_code, refused.json()["type"]) == (
        401,
        errors.PROBLEM_BASE + "unauthenticated",
    )
    owner = practice.owner()
    as_staff = add_member(practice, owner, "sam", "Sam Staff", "staff").client()
    assert http.post("/labs", json=bad, headers=bearer(as_staff)).status_code == 403
    assert http.post("/labs", json=bad, headers=bearer(owner)).status_code == 422
    malformed = http.post(
        "/labs", content=b"{", headers={**HEADERS, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
