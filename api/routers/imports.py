"""Imports over HTTP: the request body is the file exactly as exported (docs/IMPORTS.md §7).

Patients (owners and staff): ``POST /imports/patients?mapping=<column map JSON>``, a CSV body.
Labs (owners and clinicians): ``POST /imports/labs``, HL7 v2 ER7 messages. Email and SMS
(owners and clinicians, for one patient): ``POST /imports/email?patient_id=``, one .eml or an
mbox; ``POST /imports/sms?patient_id=``, an SMS Backup & Restore XML export.

201 with the report when written; 422 ``import-rejected`` with the report in the problem when
anything was rejected (unless ``accept_valid=true``) or nothing was valid: nothing is written.
Each body is spooled to disk as it arrives (``api/spool.py``) and read once by the import.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Query, status

from api import importing
from api.auth import Principal
from api.deps import LedgerDep, RunnerDep
from api.importing_schemas import ImportReportOut
from api.roles import require_role
from api.routing import Router
from api.spool import SpooledBody, request_body
from domain.imports.csv_patients import ColumnMap
from events.ledger import Ledger
from projections.runner import Runner

router = Router(prefix="/imports", tags=["imports"])

PatientImporter = Annotated[Principal, require_role("staff")]
ChartImporter = Annotated[Principal, require_role("clinician")]
AcceptValid = Annotated[
    bool, Query(description="write the valid items even if others are rejected")
]
SourceName = Annotated[
    str, Query(min_length=1, max_length=255, description="the file's name, for the summary")
]


def _importer(principal: Principal, ledger: Ledger, runner: Runner) -> importing.Importer:
    return importing.Importer(
        ledger=ledger,
        runner=runner,
        by=principal.user_id,
        is_owner="owner" in principal.roles,
        acting=principal.acting,
    )


@router.post(
    "/patients", status_code=status.HTTP_201_CREATED, openapi_extra=request_body("text/csv")
)
def import_patients(
    body: SpooledBody,
    principal: PatientImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    mapping: Annotated[str, Query(max_length=10_000, description="the column map, as JSON")],
    accept_valid: AcceptValid = False,
    source_name: SourceName = "patients.csv",
) -> ImportReportOut:
    columns = ColumnMap.from_json(mapping)
    importer = _importer(principal, ledger, runner)
    report = importing.import_patients(importer, body.read(), columns, source_name, accept_valid)
    return ImportReportOut.of(report)


@router.post(
    "/labs",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=request_body("x-application/hl7-v2+er7"),
)
def import_labs(
    body: SpooledBody,
    principal: ChartImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "results.hl7",
) -> ImportReportOut:
    importer = _importer(principal, ledger, runner)
    return ImportReportOut.of(
        importing.import_labs(importer, body.read(), source_name, accept_valid)
    )


@router.post(
    "/email", status_code=status.HTTP_201_CREATED, openapi_extra=request_body("message/rfc822")
)
def import_email(
    body: SpooledBody,
    principal: ChartImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    patient_id: UUID,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "message.eml",
) -> ImportReportOut:
    importer = _importer(principal, ledger, runner)
    files = [(source_name, body.read())]
    return ImportReportOut.of(importing.import_email(importer, files, patient_id, accept_valid))


@router.post(
    "/sms", status_code=status.HTTP_201_CREATED, openapi_extra=request_body("application/xml")
)
def import_sms(
    body: SpooledBody,
    principal: ChartImporter,
    ledger: LedgerDep,
    runner: RunnerDep,
    patient_id: UUID,
    accept_valid: AcceptValid = False,
    source_name: SourceName = "sms.xml",
) -> ImportReportOut:
    importer = _importer(principal, ledger, runner)
    report = importing.import_sms(importer, body.read(), source_name, patient_id, accept_valid)
    return ImportReportOut.of(report)
