"""The EHI export (ONC 170.315(b)(10)) over HTTP, for owners and risk managers only:
``POST /exports`` records the export and answers 202 with a job (docs/JOBS.md) that writes it
under ``<CHARTLEDGER_HOME>/exports/<id>/``; the job's result is its Bulk Data manifest, whose
file URLs resolve against ``/exports/<id>/manifest.json``; ``GET /exports/<id>/<file>``
downloads one file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Principal
from api.deps import JobsDep, LedgerDep
from api.jobs import JobOut, JobProgress, Jobs, JobView
from api.roles import require_role
from api.routers.jobs import accepted, started
from api.routing import Router
from api.schemas import Purpose
from events.ledger import Ledger
from events.private_files import private_dir
from projections.ehi_export import (
    ACCESS_BATCH,
    ExportRequest,
    begin_export,
    exported_patients,
    exports_home,
    finished_file,
    write_export,
)
from projections.reads import Reader, record_access

router = Router(tags=["exports"])
DOCUMENTATION_FILE = "EHI_EXPORT.md"  # copied into every export, as ehi_export.export does
Exporter = Annotated[Principal, require_role("risk_manager")]  # and owners
MEDIA_TYPES = {
    "ndjson": "application/fhir+ndjson",
    "json": "application/json",
    "msgpack": "application/vnd.msgpack",
    "md": "text/markdown; charset=utf-8",
}


# one_scope's rule, for the schema's readers.
ONE_SCOPE = {
    "oneOf": [
        {
            "required": ["patient_id"],
            "properties": {"patient_id": {"type": "string"}, "all": {"const": False}},
        },
        {
            "required": ["all"],
            "properties": {"all": {"const": True}, "patient_id": {"type": "null"}},
        },
    ]
}


class ExportIn(BaseModel):
    """One patient (``patient_id``) or the whole population (``all``: true), and why."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_SCOPE)
    patient_id: UUID | None = None
    all: bool = False
    purpose: Purpose = Field(default="PATRQT", description="HL7 PurposeOfUse")

    @model_validator(mode="after")
    def one_scope(self) -> ExportIn:
        if (self.patient_id is None) == (not self.all):
            raise ValueError("give either patient_id or all: true, not both and not neither")
        return self


@router.post(
    "/exports",
    status_code=202,
    response_model=JobOut,
    response_class=JSONResponse,
    responses=started("the export"),
)
def create_export(
    body: ExportIn, principal: Exporter, ledger: LedgerDep, request: Request, jobs: JobsDep
) -> JSONResponse:
    """Record the export (one ``export`` access per patient; an unknown patient: 404 now), then
    write it as a job whose result is its manifest."""
    job = start_export(ledger, jobs, principal, body.patient_id, body.purpose, str(request.url))
    return accepted(job)


def start_export(
    ledger: Ledger,
    jobs: Jobs,
    principal: Principal,
    patient_id: UUID | None,
    purpose: str,
    url: str,
) -> JobView:
    """Record the export of one patient (or of all: None) by ``principal`` for ``purpose``
    (refused now if it cannot be made), then start writing it as their job; the console
    starts its exports here too. ``url`` is the manifest's ``request``."""
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    export_id = uuid4()
    home = exports_home(ledger)
    private_dir(home)
    out = home / str(export_id)
    wanted = ExportRequest(reader, patient_id, url, True, export_id)
    begun = begin_export(ledger, wanted, out)

    def work(progress: JobProgress) -> dict[str, Any]:
        return write_export(ledger, begun, out, progress.reporter("writing the export"))

    session = str(principal.session_id)
    return jobs.start("export", principal.user_id, work, session=session)


@router.get("/exports/{export_id}/{name:path}")
def download(export_id: UUID, name: str, principal: Exporter, ledger: LedgerDep) -> FileResponse:
    """One file of a finished export; the download is recorded (action ``copy``) first, once
    for each patient the export carries, so it reaches each one's access report (the
    documentation file, the same for every export, carries nobody's and names nobody)."""
    path = file_copied(ledger, principal, export_id, name)
    kind = MEDIA_TYPES[name.rpartition(".")[2]]
    return FileResponse(path, media_type=kind, filename=path.name)


def file_copied(ledger: Ledger, principal: Principal, export_id: UUID, name: str) -> Path:
    """The export's file ``name``, its download recorded first (the console's too)."""
    home = exports_home(ledger)
    path = finished_file(home, export_id, name)
    reader = Reader(principal.user_id, "HOPERAT", str(principal.session_id))
    detail = {"export_id": str(export_id), "file": name}
    carried = [] if name == DOCUMENTATION_FILE else exported_patients(ledger.db, home, export_id)
    for start in range(0, max(len(carried), 1), ACCESS_BATCH):
        chunk: list[UUID | None] = list(carried[start : start + ACCESS_BATCH]) or [None]
        record_access(ledger, reader, "copy", "chart", chunk, detail=detail)
    return path
