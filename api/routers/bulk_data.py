"""FHIR Bulk Data export (HL7 Bulk Data Access IG v2) over the EHI export's own jobs:

- ``GET /fhir/$export``, ``GET /fhir/Patient/$export`` (every patient; no Group) and
  ``GET /fhir/Patient/{id}/$export`` (one) with ``Prefer: respond-async``: the export is recorded
  and started exactly as ``POST /exports`` does (owners and risk managers), 202 with the
  ``Content-Location`` of its status;
- ``GET /fhir/bulkstatus/{job_id}``: 202 with ``X-Progress`` and ``Retry-After`` while it runs,
  200 with the manifest once written, the job's failure as an OperationOutcome;
- ``DELETE /fhir/bulkstatus/{job_id}``: cancels it, or removes its files once written (202);
  its status is then 404;
- ``GET /fhir/metadata`` (the CapabilityStatement) and ``GET /docs/EHI_EXPORT.md`` (the
  export's format, the default public documentation URL), both without login.

The files are the export's own (``GET /exports/{id}/{file}``, bearer token, each download
recorded). Errors under /fhir are OperationOutcomes (api/fhir_outcome.py).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse, Response

from api.auth import Principal
from api.bulk_kickoff import OUTPUT_FORMATS, kick_off
from api.capability import capability_statement
from api.deps import CurrentUser, JobsDep, LedgerDep
from api.errors import Forbidden, NotFound, problem
from api.fhir_outcome import FHIR_JSON
from api.jobs import Jobs, JobView
from api.routers.exports import Exporter, served, start_export
from api.routers.jobs import _visible
from api.routing import Router
from events.ledger import Ledger
from projections.ehi_export import DOC_SOURCE, EXTENSION, RESOURCE_TYPES, exports_home

router = Router(tags=["bulk data"])
RETRY_AFTER = 1  # seconds a client waits between polls of a running export
CANCEL_PATIENCE = 15.0  # seconds a DELETE waits for a running export to stop
TYPES = "|".join(RESOURCE_TYPES)
# The kick-off's headers and parameters, as the OpenAPI document states them; they are read and
# checked by api/bulk_kickoff.py (a 400 OperationOutcome, as the IG has it, rather than a 422).
KICK_OFF_PARAMETERS = [
    {
        "name": "Prefer",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "enum": ["respond-async"]},
        "description": "respond-async (the export is asynchronous); without it: 400",
    },
    {
        "name": "Accept",
        "in": "header",
        "schema": {"type": "string", "enum": [FHIR_JSON]},
        "description": "the media type of an error (OperationOutcome)",
    },
    {
        "name": "_type",
        "in": "query",
        "schema": {"type": "string", "pattern": f"^({TYPES})(,({TYPES}))*$"},
        "description": "comma-separated resource types (default: all); another type: 400",
    },
    {
        "name": "_since",
        "in": "query",
        "schema": {"type": "string", "format": "date-time"},
        "description": "a FHIR instant: only resources changed since",
    },
    {
        "name": "_outputFormat",
        "in": "query",
        "schema": {"type": "string", "enum": list(OUTPUT_FORMATS)},
        "description": "NDJSON (the only format)",
    },
]
OUTCOME = {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
KICK_OFF_DOC: dict[str, Any] = {
    "parameters": KICK_OFF_PARAMETERS,
    "responses": {
        "202": {
            "description": "export started; its status at Content-Location",
            "headers": {"Content-Location": {"schema": {"type": "string"}}},
            "content": {FHIR_JSON: OUTCOME},
        }
    },
}
STATUS_DOC: dict[str, Any] = {
    "responses": {
        "200": {"description": "written: the Bulk Data manifest (docs/EHI_EXPORT.md §3)"},
        "202": {
            "description": "still running",
            "headers": {
                "X-Progress": {"schema": {"type": "string"}},
                "Retry-After": {"schema": {"type": "integer"}},
            },
        },
    }
}


class FhirJSONResponse(JSONResponse):
    media_type = FHIR_JSON


@router.get("/fhir/metadata", response_class=FhirJSONResponse)
def metadata(request: Request) -> JSONResponse:
    """The FHIR CapabilityStatement (no login): Bulk Data export, system and patient level."""
    where = served(request)
    statement = capability_statement(where.base_url, request.app.version, where.documentation_url)
    return FhirJSONResponse(statement)


@router.get("/docs/EHI_EXPORT.md", response_class=FileResponse)
def documentation() -> FileResponse:
    """The EHI export's format (docs/EHI_EXPORT.md), public: no login, no PHI."""
    if not DOC_SOURCE.is_file():
        raise NotFound("the export documentation is not installed with this server")
    return FileResponse(DOC_SOURCE, media_type="text/markdown; charset=utf-8")


@router.get(
    "/fhir/$export",
    status_code=202,
    response_class=FhirJSONResponse,
    openapi_extra=KICK_OFF_DOC,
)
def system_export(
    request: Request,
    principal: Exporter,
    ledger: LedgerDep,
    jobs: JobsDep,
) -> Response:
    """Export every patient's record (as ``POST /exports`` with ``all``)."""
    return _kick_off(request, principal, ledger, jobs, None, "HOPERAT")


@router.get(
    "/fhir/Patient/$export",
    status_code=202,
    response_class=FhirJSONResponse,
    openapi_extra=KICK_OFF_DOC,
)
def patients_export(
    request: Request,
    principal: Exporter,
    ledger: LedgerDep,
    jobs: JobsDep,
) -> Response:
    """Export every patient's record: all patients are the practice's."""
    return _kick_off(request, principal, ledger, jobs, None, "HOPERAT")


@router.get(
    "/fhir/Patient/{patient_id}/$export",
    status_code=202,
    response_class=FhirJSONResponse,
    openapi_extra=KICK_OFF_DOC,
)
def patient_export(
    patient_id: UUID,
    request: Request,
    principal: Exporter,
    ledger: LedgerDep,
    jobs: JobsDep,
) -> Response:
    """Export one patient's record (at the patient's request: ``PATRQT``)."""
    return _kick_off(request, principal, ledger, jobs, patient_id, "PATRQT")


def _kick_off(
    request: Request,
    principal: Principal,
    ledger: Ledger,
    jobs: Jobs,
    patient_id: UUID | None,
    purpose: str,
) -> Response:
    """Check the kick-off, then record and start the export; 202 and where its status is."""
    params = {name: request.query_params.getlist(name) for name in request.query_params}
    chosen = kick_off(request.headers, params)
    where = served(request)
    job = start_export(
        ledger, jobs, principal, patient_id, purpose, where, chosen.types, chosen.since
    )
    outcome = _informational(f"export started: job {job.job_id}")
    headers = {"Content-Location": where.status_url(job.job_id)}
    return FhirJSONResponse(outcome, status_code=202, headers=headers)


@router.get("/fhir/bulkstatus/{job_id}", openapi_extra=STATUS_DOC)
def status(job_id: UUID, principal: CurrentUser, jobs: JobsDep, ledger: LedgerDep) -> Response:
    """The export's status: 202 with ``X-Progress`` while it runs, 200 with its manifest once
    written, its failure as an OperationOutcome; 404 once cancelled or deleted."""
    job = _export_job(jobs, job_id, principal)
    if job.state in ("queued", "running"):
        headers = {"X-Progress": _progress(job), "Retry-After": str(RETRY_AFTER)}
        return Response(status_code=202, headers=headers)
    if job.state == "succeeded" and job.result is not None:
        if not _folder(ledger, job.result).is_dir():
            raise NotFound(f"the export of job {job_id} was deleted")
        return JSONResponse(job.result)
    if job.state == "cancelled":
        raise NotFound(f"the export of job {job_id} was cancelled")
    failure: dict[str, Any] = dict(job.error or {"status": 500, "title": "Export failed"})
    status_code = int(failure.pop("status", 500) or 500)
    slug = str(failure.pop("type", "internal")).rpartition(":")[2]
    title = str(failure.pop("title", "Export failed"))
    return problem(status_code, slug, title, failure.pop("detail", None), None, **failure)


@router.delete("/fhir/bulkstatus/{job_id}", status_code=202, response_class=FhirJSONResponse)
def delete(job_id: UUID, principal: CurrentUser, jobs: JobsDep, ledger: LedgerDep) -> Response:
    """Cancel the export, or remove its files once written (the ``export`` reads recorded
    when it started stay, as every read does); its status is 404 from then on."""
    job = _export_job(jobs, job_id, principal)
    if job.user_id != principal.user_id and "owner" not in principal.roles:
        raise Forbidden("only the export's own user or an owner may cancel it")
    if job.state == "cancelled" or (
        job.state == "succeeded" and job.result and not _folder(ledger, job.result).is_dir()
    ):
        raise NotFound(f"the export of job {job_id} was cancelled or deleted already")
    if not job.finished:
        stopped = _cancelled(jobs, job_id)
        if stopped is None:
            detail = "the export is stopping: ask again in a moment"
            later = {"Retry-After": str(RETRY_AFTER)}
            return problem(503, "export-stopping", "Export still stopping", detail, later)
        job = stopped
    if job.state == "succeeded" and job.result is not None:
        shutil.rmtree(_folder(ledger, job.result), ignore_errors=True)
    outcome = _informational(f"export of job {job_id} cancelled; its files removed")
    return FhirJSONResponse(outcome, status_code=202)


def _export_job(jobs: Jobs, job_id: UUID, principal: Principal) -> JobView:
    job = _visible(jobs, job_id, principal)
    if job.kind != "export":
        raise NotFound(f"no export job {job_id}")
    return job


def _cancelled(jobs: Jobs, job_id: UUID) -> JobView | None:
    """Ask the job to stop and wait until it has (at its next progress point; None if not
    within CANCEL_PATIENCE); it may have finished meanwhile: the caller removes its files."""
    job = jobs.cancel(job_id)
    deadline = time.monotonic() + CANCEL_PATIENCE
    while job is not None and not job.finished and time.monotonic() < deadline:
        time.sleep(0.05)
        job = jobs.get(job_id)
    return job if job is not None and job.finished else None


def _folder(ledger: Ledger, manifest: dict[str, Any]) -> Path:
    """The export's folder (one that cannot exist if the stored result was altered)."""
    made = manifest.get("extension", {}).get(EXTENSION, {})
    return exports_home(ledger) / str(UUID(str(made.get("exportId", UUID(int=0)))))


def _progress(job: JobView) -> str:
    """``X-Progress``: how far, in the job's own units, and what it does now."""
    stage = job.stage or job.state
    if job.total:
        return f"{min(100, job.done * 100 // job.total)}% ({job.done}/{job.total} events, {stage})"
    return f"{stage}: {job.done}"


def _informational(text: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
    }
