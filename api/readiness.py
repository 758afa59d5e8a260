"""``/health`` says whether the store can be used now, and ``/health/ready`` answers 503 while
it cannot, so a reverse proxy or an orchestrator stops sending writes that would only fail.

Two sources: a probe (one cheap read of the store, and for a SQLite store the free space of its
disk) and what requests have just met (``api/errors.py`` notes every store condition it
answers). A condition met by a request counts for ``RECENT`` seconds, or until a later write
succeeds: with a full disk under PostgreSQL the probe's read still works, and a proxy that stops
sending traffic would otherwise never see the disk freed.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from fastapi import APIRouter, Request

from api.errors import problem
from api.status import health_word
from events import store_errors as store
from events.loop_beats import read_shared

PROBE_TIMEOUT = 1.0  # seconds the probe waits for a connection: a probe must answer quickly
RECENT = 10.0  # seconds a condition met by a request keeps the server unready
FREE_AT_LEAST = 256 * 1024  # bytes a SQLite store's disk needs for an append to fit
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NAMES: dict[type[store.StoreError], str] = {
    store.StoreUnavailable: "store-unavailable",
    store.StorageFull: "storage-full",
    store.StoreBusy: "store-busy",
}

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
router = APIRouter(tags=["health"])


class StoreConditions:
    """Store conditions requests met, and when (one per server process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[type[store.StoreError], float] = {}

    def observed(self, condition: type[store.StoreError]) -> None:
        for cls in condition.__mro__:
            if cls in NAMES:
                with self._lock:
                    self._seen[cls] = time.monotonic()
                return

    def cleared(self) -> None:
        """A write succeeded: whatever stopped writes has passed."""
        with self._lock:
            self._seen.clear()

    def recent(self) -> set[type[store.StoreError]]:
        now = time.monotonic()
        with self._lock:
            return {c for c, at in self._seen.items() if now - at < RECENT}


def conditions(services: Any, noted: StoreConditions) -> list[str]:
    """The names of the store conditions that hold now, most serious first; none if ready."""
    found = noted.recent()
    try:
        services.ledger.db.ping(PROBE_TIMEOUT)
    except Exception as error:
        found.add(store.classify(error) or store.StoreUnavailable)
    else:
        found.discard(store.StoreUnavailable)  # reachable again
    config = services.ledger.config
    if config.database_url is None:
        space = os.statvfs(config.sqlite_path.parent)
        if space.f_bavail * space.f_frsize < FREE_AT_LEAST:
            found.add(store.StorageFull)
        elif store.StorageFull in found:
            found.discard(store.StorageFull)  # space was freed since the refusal
    return [NAMES[c] for c in NAMES if c in found]


@router.get("/health")
def health(request: Request) -> dict[str, Any]:
    """Liveness (always 200 while the process answers) and the store's conditions."""
    services = request.app.state.services
    held = conditions(services, request.app.state.store_conditions)
    # background: ok, or late when a loop has missed its rounds (details: GET /status).
    settings = services.settings
    # On PostgreSQL the group's heartbeats too, unless the probe just found the store away:
    # then this home's files answer at once, without waiting for a connection.
    shared = None if "store-unavailable" in held else lambda: read_shared(services.ledger.db)
    background = health_word(settings.store.home, shared) if settings.background else "off"
    return {
        "status": "ok" if not held else "degraded",
        "store": held[0] if held else "ok",
        "conditions": held,
        "background": background,
    }


@router.get(
    "/health/ready",
    responses={503: {"description": "the store cannot take writes", "content": PROBLEM}},
)
def ready(request: Request) -> Any:
    """200 while the store can take writes; 503 with Retry-After while it cannot."""
    held = conditions(request.app.state.services, request.app.state.store_conditions)
    if not held:
        return {"status": "ready"}
    retry = max(c.retry_after for c, name in NAMES.items() if name in held)
    return problem(
        503,
        "not-ready",
        "Not ready: the store cannot take writes",
        "conditions: " + ", ".join(held),
        {"Retry-After": str(retry)},
        conditions=held,
    )


class ClearOnWrite:
    """ASGI middleware: a state-changing request answered 2xx clears the noted conditions."""

    def __init__(self, app: Any, noted: StoreConditions) -> None:
        self.app, self.noted = app, noted

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return

        async def watched(message: Any) -> None:
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                self.noted.cleared()
            await send(message)

        await self.app(scope, receive, watched)


def install(app: Any) -> None:
    """The routes, the record of conditions met, and the middleware clearing it."""
    app.state.store_conditions = noted = StoreConditions()
    app.include_router(router)
    app.add_middleware(ClearOnWrite, noted=noted)
