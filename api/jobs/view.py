"""A job as the API shows it (``JobView``), and its JSON schema for the OpenAPI document."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED = ("succeeded", "failed", "cancelled")
UNFINISHED = ("queued", "running")


@dataclass(frozen=True)
class JobView:
    job_id: UUID
    kind: str
    state: State
    done: int
    total: int | None
    stage: str
    result: dict[str, Any] | None
    error: dict[str, Any] | None  # an RFC 9457 problem
    user_id: UUID
    started_at: datetime
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def location(self) -> str:
        return f"/jobs/{self.job_id}"

    def as_json(self) -> dict[str, Any]:
        return JobOut.model_validate(asdict(self)).model_dump(mode="json")


class JobOut(BaseModel):
    """A job: long work the server does after answering (docs/JOBS.md)."""

    job_id: UUID
    kind: str = Field(description="production, export, import or backup")
    state: State
    done: int = Field(description="units of work done so far (events, documents, items)")
    total: int | None = Field(description="units in all, once known")
    stage: str = Field(description="what the work is doing now, e.g. 'gathering events'")
    result: dict[str, Any] | None = Field(
        description="once succeeded: what the synchronous request used to answer (a "
        "production's `download` URL, an export's manifest, an import's report)"
    )
    error: dict[str, Any] | None = Field(description="once failed: an RFC 9457 problem")
    user_id: UUID = Field(description="who started it")
    started_at: datetime
    finished_at: datetime | None
