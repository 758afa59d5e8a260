"""The HTTP API: ``create_app(settings)`` wires the ledger, its views, authentication, the error
mapping (``api/errors.py``) and one router per resource (``api/routers/``)."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from api import errors, limits, openapi, readiness
from api.deps import Services
from api.fhir_outcome import FhirOutcomes
from api.idempotency.middleware import IdempotencyKeys
from api.notice_loop import send_notices_when_chosen
from api.security_headers import add_security_headers
from api.settings import Settings
from api.status import FOLLOWER, SIGNER
from events.background import Heartbeat, keep_running
from events.config import StoreConfig
from events.ledger import Ledger
from events.log import tree_size
from projections.runner import FOLLOW_EVERY, FOLLOW_LATE_AFTER, Runner, follow

log = logging.getLogger("chartledger.jobs")
FOLLOWER_LOOKS_AGAIN = 5.0  # seconds between a waiting process's tries for the follower lock


def signer_heartbeat(ledger: Ledger) -> Heartbeat:
    """The signer runs every T seconds; late once it has missed a round (2 T, and a second
    for the round itself); while the store fails it waits up to 4 T between tries."""
    every = ledger.checkpointer.every_seconds
    return Heartbeat(ledger.config.home, SIGNER, every, 2 * every + 1.0)


def _checkpoint_every(ledger: Ledger, stop: threading.Event) -> None:
    """Sign the log every T seconds while it grows, so a quiet spell leaves no tail unsigned."""

    def sign_if_due() -> None:
        with ledger.db.read() as c:
            size = tree_size(c)
        ledger.checkpointer.maybe_issue(size)

    every = ledger.checkpointer.every_seconds
    beat = signer_heartbeat(ledger)
    keep_running("checkpoints: signing", sign_if_due, stop, every, 4 * every, beat)


def _follow_when_chosen(runner: Runner, stop: threading.Event, home: Path) -> None:
    """Keep the views caught up, from one server process only: the one holding the lock file.
    The others look again every few seconds, so a successor takes over if it stops."""
    heartbeat = Heartbeat(home, FOLLOWER, FOLLOW_EVERY, FOLLOW_LATE_AFTER)

    def follow_if_chosen() -> None:
        fd = os.open(home / "views-follower.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return  # another process follows; look again later
            follow(runner, stop, heartbeat=heartbeat)
        finally:
            os.close(fd)  # and with it the lock

    # A lock file that cannot be opened (say, the home's disk is full) is tried again too.
    keep_running(
        "projections: waiting to follow",
        follow_if_chosen,
        stop,
        FOLLOWER_LOOKS_AGAIN,
        60.0,
        at_once=True,
    )


def create_app(settings: Settings | StoreConfig) -> FastAPI:
    if isinstance(settings, StoreConfig):
        settings = Settings(store=settings)
    services = Services.open(settings)
    ledger = services.ledger

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        # Jobs a stopped process left running are failed now, not when someone looks (and
        # when someone looks, if the store is away just now).
        try:
            services.jobs.interrupt_lost()
        except Exception as e:
            log.warning("jobs of stopped processes not yet marked: %s", type(e).__name__)
        if settings.background:
            timer = threading.Thread(target=_checkpoint_every, args=(ledger, stop), daemon=True)
            timer.start()
            views = threading.Thread(
                target=_follow_when_chosen,
                args=(services.runner, stop, settings.store.home),
                daemon=True,
            )
            views.start()
            notices = threading.Thread(
                target=send_notices_when_chosen,
                args=(ledger, stop, settings.notice_every.total_seconds()),
                daemon=True,
            )
            notices.start()
        yield
        stop.set()
        services.jobs.close()  # running jobs stop at their next progress point
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
    from api.routers import bulk_data, exports  # EHI export (issue #7), Bulk Data (issue 19)

    app.include_router(exports.router)
    app.include_router(bulk_data.router)
    from api.routers.imports import router as imports_router

    app.include_router(imports_router)
    from api.routers.productions import router as productions_router  # bundles (issue #6)

    app.include_router(productions_router)

    from api.routers.status import router as status_router  # issue 17: background loops

    app.include_router(status_router)
    from api.routers.backups import router as backups_router
    from api.routers.jobs import router as jobs_router  # issue 18: long work as jobs

    app.include_router(jobs_router)
    app.include_router(backups_router)

    from api.console import router as console_router  # issue 18: the console's pages

    app.include_router(console_router)

    # Inside the request limits: the key's digest reads a body already bounded.
    lifetime = settings.idempotency_key_lifetime
    app.add_middleware(IdempotencyKeys, answers=services.answers, lifetime=lifetime)
    app.add_middleware(limits.RequestLimits, limits=settings.limits)
    app.add_middleware(FhirOutcomes)  # problems under /fhir as OperationOutcomes, 413s too
    readiness.install(app)  # /health and /health/ready (issue 23)
    # After every route: each one's problems declared, the bounds' figures among them.
    openapi.install(app, settings.limits, store=True)
    add_security_headers(app)  # outermost: every response, 413s, 431s and 500s too
    return app
