"""How a job's failure reads: the RFC 9457 problem its request would have answered with."""

from __future__ import annotations

import json
import logging
from typing import Any

from api.errors import PROBLEM_BASE, response_for, status_of
from events import store_errors as store

log = logging.getLogger("chartledger.jobs")

INTERRUPTED = {
    "type": PROBLEM_BASE + "job-interrupted",
    "title": "Job interrupted",
    "status": 500,
    "detail": "the server process running the job stopped before it finished; nothing it was "
    "writing was kept: start it again",
}
CANCELLED = {
    "type": PROBLEM_BASE + "job-cancelled",
    "title": "Job cancelled",
    "status": 409,
    "detail": "cancelled on request; nothing it was writing was kept",
}


def problem_of(error: BaseException) -> dict[str, Any]:
    """The problem for ``error``: a known one as the API states it (``api/errors.py``), a store
    condition (a full disk: 503 storage-full) as such, anything else an internal error, its
    type logged."""
    if status_of(error)[0] == 500 and isinstance(error, Exception):
        condition = store.classify(error)
        if condition is None:
            log.error("job failed: %s", type(error).__name__)
            return {"type": PROBLEM_BASE + "internal", "title": "Internal server error",
                    "status": 500}  # fmt: skip
        error = condition()
    if not isinstance(error, Exception):
        return dict(INTERRUPTED)
    body: dict[str, Any] = json.loads(bytes(response_for(error).body))
    return body
