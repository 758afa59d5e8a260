"""The HTTP API: ``create_app(settings)`` wires the ledger, its views, authentication, the error
mapping (``api/errors.py``) and one router per resource (``api/routers/``)."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api import errors, readiness
from api.deps import Services
from api.settings import Settings
from events.config import StoreConfig
from events.ledger import Ledger
from events.log import tree_size
from projections.runner import Runner, follow

FOLLOWER_LOOKS_AGAIN = 5.0  # seconds between a waiting process's tries for the follower lock


def _checkpoint_every(ledger: Ledger, stop: threading.Event) -> None:
    """Sign the log every T seconds while it grows, so a quiet spell leaves no tail unsigned."""
    while not stop.wait(ledger.checkpointer.every_seconds):
        with ledger.db.read() as c:
            size = tree_size(c)
        ledger.checkpointer.maybe_issue(size)


def _follow_when_chosen(runner: Runner, stop: threading.Event, lock_path: Path) -> None:
    """Keep the views caught up, from one server process only: the one holding the lock file.
    The others look again every few seconds, so a successor takes over if it stops."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if stop.wait(FOLLOWER_LOOKS_AGAIN):
                    return
        follow(runner, stop)
    finally:
        os.close(fd)  # and with it the lock


def create_app(settings: Settings | StoreConfig) -> FastAPI:
    if isinstance(settings, StoreConfig):
        settings = Settings(store=settings)
    services = Services.open(settings)
    ledger = services.ledger

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        if settings.background:
            timer = threading.Thread(target=_checkpoint_every, args=(ledger, stop), daemon=True)
            timer.start()
            views = threading.Thread(
                target=_follow_when_chosen,
                args=(services.runner, stop, settings.store.home / "views-follower.lock"),
                daemon=True,
            )
            views.start()
        yield
        stop.set()
        ledger.close()
        services.last_seen.close()
        services.throttle.close()

    app = FastAPI(
        title="Chartledger",
        version="0.1.0",
        lifespan=lifespan,
        description="Every write is a ledger event; every read of PHI is recorded first.",
    )
    app.state.services = services
    errors.install(app)
    from api.routers import all_routers

    for router in all_routers():
        app.include_router(router)
    from api.routers import exports  # EHI export (issue #7)

    app.include_router(exports.router)
    from api.routers.imports import router as imports_router

    app.include_router(imports_router)
    from api.routers.productions import router as productions_router  # bundles (issue #6)

    app.include_router(productions_router)

    readiness.install(app)  # /health and /health/ready (issue 23)
    app.add_middleware(errors.BodyLimit, limit=settings.max_body_bytes)
    return app
