"""Long work in the console: a job's page, with a progress bar that htmx refreshes from a
fragment every second until the job ends (no script of the page's own; without JavaScript the
page says to reload). A finished job links to what it made: a production's page, an export's.

A console user sees their own jobs only (the API lets owners and auditors see everyone's).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.auth import Principal
from api.console.web import PREFIX, ConsoleRoute, ConsoleUserDep, render, services_of
from api.errors import NotFound
from api.jobs import JobView
from projections.ehi_export import EXTENSION

router = APIRouter(route_class=ConsoleRoute)
NAV: list[Any] = []  # reached from the page that started the job
KINDS = {
    "production": "Production",
    "export": "EHI export",
    "import": "Import",
    "backup": "Backup",
}


def _mine(request: Request, principal: Principal, job_id: UUID) -> JobView:
    job = services_of(request).jobs.get(job_id)
    if job is None or job.user_id != principal.user_id:
        raise NotFound(f"no job {job_id}")
    return job


def next_page(job: JobView) -> tuple[str, str] | None:
    """Where a succeeded job's result is shown in the console, and the link's words."""
    result = job.result or {}
    if job.state != "succeeded":
        return None
    if job.kind == "production" and "production_id" in result:
        return f"{PREFIX}/productions/{result['production_id']}", "Open the production"
    made = result.get("extension", {}).get(EXTENSION, {})
    if job.kind == "export" and made.get("exportId"):
        return f"{PREFIX}/exports/{made['exportId']}", "Open the export"
    return None


def _context(job: JobView) -> dict[str, Any]:
    percent = None
    if job.total:
        percent = min(100, round(100 * job.done / job.total))
    return {
        "job": job,
        "kind": KINDS.get(job.kind, job.kind),
        "percent": percent,
        "next_page": next_page(job),
    }


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: UUID, principal: ConsoleUserDep) -> Response:
    job = _mine(request, principal, job_id)
    context = _context(job)
    return render(request, "jobs/job.html", title=f"{context['kind']}: {job.state}", **context)


@router.get("/jobs/{job_id}/progress")
def job_progress(request: Request, job_id: UUID, principal: ConsoleUserDep) -> Response:
    """The progress fragment htmx swaps in; once the job ended it no longer asks again."""
    job = _mine(request, principal, job_id)
    return render(request, "jobs/_progress.html", **_context(job))
