"""Jobs over HTTP (docs/JOBS.md): ``GET /jobs`` (the caller's own; owners and auditors see
every job), ``GET /jobs/{id}``, ``DELETE /jobs/{id}`` (cancel). A job that is not the caller's
is 404 to anyone who may not see every job, as if it did not exist."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi.responses import JSONResponse

from api.auth import Principal
from api.deps import CurrentUser, JobsDep
from api.errors import Forbidden, NotFound
from api.jobs import JobOut, Jobs, JobView
from api.routing import Router

router = Router(tags=["jobs"])
SEES_ALL = ("owner", "auditor")


def _sees_all(principal: Principal) -> bool:
    return any(role in principal.roles for role in SEES_ALL)


def _visible(jobs: Jobs, job_id: UUID, principal: Principal) -> JobView:
    job = jobs.get(job_id)
    if job is None or (job.user_id != principal.user_id and not _sees_all(principal)):
        raise NotFound(f"no job {job_id}")
    return job


def started(what: str) -> dict[int | str, dict[str, Any]]:
    """The 202 a route starting a job declares (with ``response_model=JobOut``)."""
    return {
        202: {
            "description": f"{what} started: the job, to follow at its Location",
            "headers": {
                "Location": {
                    "description": "the job's URL, /jobs/{job_id}",
                    "schema": {"type": "string"},
                }
            },
        }
    }


def accepted(job: JobView) -> JSONResponse:
    """The answer to a request that started ``job``: 202, the job, and where to follow it."""
    return JSONResponse(job.as_json(), status_code=202, headers={"Location": job.location})


@router.get("/jobs", response_model=list[JobOut])
def list_jobs(principal: CurrentUser, jobs: JobsDep) -> list[JobOut]:
    """The newest 100 jobs: the caller's own, or everyone's for owners and auditors."""
    user = None if _sees_all(principal) else principal.user_id
    return [JobOut.model_validate(j.as_json()) for j in jobs.listed(user)]


@router.get("/jobs/{job_id}", response_model=JobOut)
def get_job(job_id: UUID, principal: CurrentUser, jobs: JobsDep) -> JobOut:
    """The job: its state, progress, and once finished its result or its problem."""
    return JobOut.model_validate(_visible(jobs, job_id, principal).as_json())


@router.delete("/jobs/{job_id}", response_model=JobOut)
def cancel_job(job_id: UUID, principal: CurrentUser, jobs: JobsDep) -> JobOut:
    """Cancel a queued or running job (a running one stops at its next progress point; what
    it was writing is not kept). A finished job is answered as it is."""
    job = _visible(jobs, job_id, principal)
    if job.user_id != principal.user_id and "owner" not in principal.roles:
        raise Forbidden("only the job's own user or an owner may cancel it")
    if not job.finished:
        job = jobs.cancel(job_id) or job
    return JobOut.model_validate(job.as_json())
