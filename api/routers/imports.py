"""Imports over HTTP: the request body is the file exactly as exported (docs/IMPORTS.md §7).

Patients (owners and staff): ``POST /imports/patients?mapping=<column map JSON>``, a CSV body.
Labs (owners and clinicians): ``POST /imports/labs``, HL7 v2 ER7 messages. Email and SMS
(owners and clinicians, for one patient): ``POST /imports/email?patient_id=``, one .eml or an
mbox; ``POST /imports/sms?patient_id=``, an SMS Backup & Restore XML export. A FHIR Bulk
Data export (owners): ``POST /imports/fhir``, a ZIP of the export's folder or one NDJSON file.

Each answers 202 with a job (docs/JOBS.md) once the body is read and what can be checked at
once is (the column map, the patient and the caller's care relationship with them): the job's
result is the report when written; the job fails with 422 ``import-rejected`` and the report in
its problem when anything was rejected (unless ``accept_valid=true``) or nothing was valid:
nothing is written. Each body is spooled to disk as it arrives (``api/spool.py``) and read once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import Query
from fastapi.responses import JSONResponse

from api import fhir_importing, importing
from api.auth import Principal
from api.deps import JobsDep, LedgerDep, RunnerDep
from api.importing_schemas import ImportReportOut
from api.jobs import JobOut, JobProgress, Jobs
from api.roles import require_role
from api.routers.jobs import accepted, started
from api.routing import Router
from api.spool import SpooledBody, request_body
from domain.imports.csv_patients import ColumnMap
from domain.imports.report import ImportReport
from events.ledger import Ledger
from projections.runner import Runner

router = Router(prefix="/imports", tags=["imports"])

PatientImporter = Annotated[Principal, require_role("staff")]
ChartImporter = Annotated[Principal, require_role("clinician")]
Owner = Annotated[Principal, require_role("owner")]
AcceptValid = Annotated[
    bool, Query(description="write the valid items even if others are rejected")
]
SourceName = Annotated[
    str, Query(min_length=1, max_length=255, description="the file's name, for the summary")
]


JOB = {
    "status_code": 202,
    "response_model": JobOut,
    "response_class": JSONResponse,
    "responses": started("the import"),
}


def _importer(
    principal: Principal, ledger: Ledger, runner: Runner, progress: JobProgress | None = None
) -> importing.Importer:
    return importing.Importer(
        ledger=ledger,
        runner=runner,
        by=principal.user_id,
        is_owner="owner" in principal.roles,
        acting=principal.acting,
        progress=None if progress is None else progress.reporter("importing"),
    )


def _start(
    jobs: Jobs,
    principal: Principal,
    ledger: Ledger,
    runner: Runner,
    run: Callable[[importing.Importer], ImportReport],
) -> JSONResponse:
    """Start the import as a job whose result is its report."""

    def work(progress: JobProgress) -> dict[str, Any]:
        progress.update(0, None, "reading the file")
        report = run(_importer(principal, ledger, runner, progress))
        return ImportReportOut.of(report).model_dump(mode="json")

    session = str(principal.session_id)
    return accepted(jobs.start("import", principal.user_id, work, session=session))


@router.post("/patients", openapi_extra=request_body("text/csv"), **JOB)
def import_patients(
    body: SpooledBody,
    principal: PatientImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    jobs: JobsDep,
    mapping: Annotated[str, Query(max_length=10_000, description="the column map, as JSON")],
    accept_valid: AcceptValid = False,
    source_name: SourceName = "patients.csv",
) -> JSONResponse:
    columns = ColumnMap.from_json(mapping)
    data = body.read()
    return _start(
        jobs, principal, ledger, runner,
        lambda i: importing.import_patients(i, data, columns, source_name, accept_valid),
    )  # fmt: skip


@router.post("/labs", openapi_extra=request_body("x-application/hl7-v2+er7"), **JOB)
def import_labs(
    body: SpooledBody,
    principal: ChartImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    jobs: JobsDep,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "results.hl7",
) -> JSONResponse:
    data = body.read()
    return _start(
        jobs, principal, ledger, runner,
        lambda i: importing.import_labs(i, data, source_name, accept_valid),
    )  # fmt: skip


@router.post("/email", openapi_extra=request_body("message/rfc822"), **JOB)
def import_email(
    body: SpooledBody,
    principal: ChartImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    jobs: JobsDep,
    patient_id: UUID,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "message.eml",
) -> JSONResponse:
    importing.check_patient(_importer(principal, ledger, runner), patient_id, "messages")
    files = [(source_name, body.read())]
    return _start(
        jobs, principal, ledger, runner,
        lambda i: importing.import_email(i, files, patient_id, accept_valid),
    )  # fmt: skip


@router.post("/sms", openapi_extra=request_body("application/xml"), **JOB)
def import_sms(
    body: SpooledBody,
    principal: ChartImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    jobs: JobsDep,
    patient_id: UUID,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "sms.xml",
) -> JSONResponse:
    importing.check_patient(_importer(principal, ledger, runner), patient_id, "messages")
    data = body.read()
    return _start(
        jobs, principal, ledger, runner,
        lambda i: importing.import_sms(i, data, source_name, patient_id, accept_valid),
    )  # fmt: skip


@router.post("/fhir", openapi_extra=request_body("application/zip"), **JOB)
def import_fhir(
    body: SpooledBody,
    principal: Owner,
    ledger: LedgerDep,
    runner: RunnerDep,
    jobs: JobsDep,
    source: Annotated[
        str | None,
        Query(
            max_length=2000, description="the exporting system's URI, if its manifest names none"
        ),
    ] = None,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "export.ndjson",
) -> JSONResponse:
    """A FHIR Bulk Data export: a ZIP of its folder, or one NDJSON file (docs/IMPORTS.md §9)."""
    export = fhir_importing.read_archive(body.read(), source_name)
    fhir_importing.source_of(export, source)  # 422 before any job when no source is named
    return _start(
        jobs, principal, ledger, runner,
        lambda i: fhir_importing.import_fhir(i, export, source, source_name, accept_valid),
    )  # fmt: skip
