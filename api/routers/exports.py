"""The EHI export (ONC 170.315(b)(10)) over HTTP, for owners and risk managers only:
``POST /exports`` records the export and answers 202 with a job (docs/JOBS.md) that writes it
under ``<CHARTLEDGER_HOME>/exports/<id>/``, its ``Content-Location`` the job's Bulk Data status
URL (api/routers/bulk_data.py); the job's result is its Bulk Data manifest, whose file URLs are
absolute (``<base>/exports/<id>/<file>``); ``GET /exports/<id>/<file>`` downloads one file."""

from __future__ import annotations

from dataclasses import dataclass
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
    DOCS_PATH,
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
STATUS_PATH = "fhir/bulkstatus/"  # + a job id: an export's Bulk Data status
Exporter = Annotated[Principal, require_role("risk_manager")]  # and owners
MEDIA_TYPES = {
    "ndjson": "application/fhir+ndjson",
    "json": "application/json",
    "msgpack": "application/vnd.msgpack",
    "md": "text/markdown; charset=utf-8",
}


@dataclass(frozen=True)
class Served:
    """Where a request's export is served: the absolute URLs its manifest is written with."""

    base_url: str  # ends in "/"
    documentation_url: str  # the format's public documentation
    request_url: str  # the request, as a client reaches it

    def status_url(self, job_id: UUID) -> str:
        return f"{self.base_url}{STATUS_PATH}{job_id}"


def served(request: Request) -> Served:
    """The server's base URL as clients reach it (CHARTLEDGER_PUBLIC_BASE_URL behind a proxy,
    else the request's own) and the documentation's (CHARTLEDGER_EXPORT_DOCS_URL, else the copy
    this server publishes at ``/docs/EHI_EXPORT.md``)."""
    settings = request.app.state.services.settings
    base = settings.public_base_url or str(request.base_url)
    base = base if base.endswith("/") else base + "/"
    url = str(request.url)
    if settings.public_base_url:
        here = str(request.base_url)
        url = base + url.removeprefix(here) if url.startswith(here) else url
    return Served(base, settings.export_docs_url or base + DOCS_PATH, url)


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
    write it as a job whose result is its manifest; ``Content-Location``: its Bulk Data status."""
    where = served(request)
    job = start_export(ledger, jobs, principal, body.patient_id, body.purpose, where)
    response = accepted(job)
    response.headers["Content-Location"] = where.status_url(job.job_id)
    return response


def start_export(
    ledger: Ledger,
    jobs: Jobs,
    principal: Principal,
    patient_id: UUID | None,
    purpose: str,
    where: Served,
    types: frozenset[str] | None = None,
    since: str | None = None,
) -> JobView:
    """Record the export of one patient (or of all: None) by ``principal`` for ``purpose``
    (refused now if it cannot be made), then start writing it as their job; the console and
    Bulk Data ``$export`` start theirs here too. ``where``: its manifest's URLs; ``types`` and
    ``since``: Bulk Data ``_type`` and ``_since``."""
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    export_id = uuid4()
    home = exports_home(ledger)
    private_dir(home)
    out = home / str(export_id)
    wanted = ExportRequest(
        reader, patient_id, where.request_url, True, export_id,
        where.base_url, where.documentation_url, types, since,
    )  # fmt: skip
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
