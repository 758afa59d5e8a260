"""E-discovery productions over HTTP, for the ``risk_manager`` role only (owners included in
the refusal, as for holds): ``POST /matters/{id}/productions`` checks the request, then starts
a job (docs/JOBS.md) that writes the matter's bundle to
``<CHARTLEDGER_HOME>/productions/<production id>.zip`` and records it: 202 with the job, whose
result, once it succeeded, is the production with its ``download`` URL. ``GET
/productions/{id}/bundle`` downloads it, recorded first as a copy of what it holds."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, now
from api.deps import JobsDep, LedgerDep
from api.errors import NotFound
from api.jobs import JobOut, JobProgress, Jobs, JobView
from api.routers.holds import RiskManager
from api.routers.jobs import accepted, started
from api.routing import Router
from api.schemas import NOT_BLANK
from domain.access import Access
from events.ledger import Ledger
from events.private_files import private_dir
from legal_hold.production import check_production, produce

router = Router(tags=["productions"])
MEDIA_TYPE = "application/zip"


class WithheldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=0, description="the leaf position of the event to withhold")
    claim: str = Field(
        min_length=1, pattern=NOT_BLANK, max_length=200, description="e.g. attorney-client"
    )


class ProductionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    withhold: list[WithheldIn] = Field(default_factory=list, max_length=10_000)
    since_checkpoint: int | None = Field(
        default=None, ge=1, description="size of an earlier checkpoint the other side holds"
    )


class ProductionOut(BaseModel):
    """A production job's result."""

    production_id: UUID
    matter_id: UUID
    produced_at: datetime
    sha256: str
    size: int
    events: int
    checkpoint_size: int
    subjects: list[str]
    download: str


def productions_home(ledger: Ledger) -> Path:
    return ledger.config.home / "productions"


@router.post(
    "/matters/{matter_id}/productions",
    status_code=202,
    response_model=JobOut,
    response_class=JSONResponse,
    responses=started("the production"),
)
def create_production(
    matter_id: UUID, body: ProductionIn, principal: RiskManager, ledger: LedgerDep, jobs: JobsDep
) -> JSONResponse:
    """Produce the matter: every event of its patients and custodians, payloads in scope only.
    A refusal known up front (no matter, no hold, nothing in scope, a claim on an event out of
    scope) is answered now; the production itself runs as a job."""
    withhold = {w.position: w.claim for w in body.withhold}
    job = start_production(ledger, jobs, principal, matter_id, withhold, body.since_checkpoint)
    return accepted(job)


def start_production(
    ledger: Ledger,
    jobs: Jobs,
    principal: Principal,
    matter_id: UUID,
    withhold: dict[int, str],
    since: int | None,
) -> JobView:
    """Check the production request now (refusing what ``produce`` would refuse), then start
    it as a job of ``principal``'s; the console starts its productions here too."""
    production_id = uuid4()
    home = productions_home(ledger)
    private_dir(home)
    out = home / f"{production_id}.zip"
    check_production(ledger, matter_id, out, withhold=withhold, since=since)
    session = str(principal.session_id)

    def work(progress: JobProgress) -> dict[str, Any]:
        at = now()
        progress.update(0, None, "recording the disclosure")
        try:
            produced = produce(
                ledger,
                matter_id,
                out,
                by=principal.user_id,
                withhold=withhold,
                since=since,
                at=at,
                production_id=production_id,
                session=session,
                progress=progress.reporter("gathering events"),
                review_progress=progress.reporter("writing review files"),
            )
        except BaseException:
            # The bundle is renamed into place before its event is saved: without the
            # event, no bundle (a download would serve a production the log never recorded).
            with suppress(FileNotFoundError):
                out.unlink()
            raise
        return ProductionOut(
            production_id=produced.production_id,
            matter_id=matter_id,
            produced_at=at,
            sha256=produced.sha256,
            size=produced.size,
            events=produced.events,
            checkpoint_size=produced.checkpoint_size,
            subjects=list(produced.subjects),
            download=f"/productions/{produced.production_id}/bundle",
        ).model_dump(mode="json")

    return jobs.start("production", principal.user_id, work, session=session)


@router.get("/productions/{production_id}/bundle", response_class=FileResponse)
def download_bundle(production_id: UUID, principal: RiskManager, ledger: LedgerDep) -> FileResponse:
    """The bundle file, byte for byte as produced (its SHA-256 is in the production event)."""
    path = bundle_copied(ledger, principal, production_id)
    return FileResponse(path, media_type=MEDIA_TYPE, filename=f"production-{production_id}.zip")


def bundle_copied(ledger: Ledger, principal: Principal, production_id: UUID) -> Path:
    """The production's bundle file, its download recorded first (the console's too)."""
    path = productions_home(ledger) / f"{production_id}.zip"
    if not path.is_file():
        raise NotFound(f"no production {production_id}")
    # One copy per patient the bundle carries (its production event names them), so the
    # download reaches each one's access report; one without a patient if it carries none.
    produced = ledger.repository.get(production_id)
    subjects = getattr(produced, "produced_subjects", [])
    carried = [UUID(s.removeprefix("patient:")) for s in subjects if s.startswith("patient:")]
    at = now()
    copies = [
        Access.record(
            user_id=principal.user_id,
            patient_id=patient_id,
            action="copy",
            data_category="chart",
            purpose_of_use="HLEGAL",
            at=at,
            detail={"production": str(production_id)},
        )
        for patient_id in carried or [None]
    ]
    with principal.acting():
        ledger.save_together(*copies)
    return path
