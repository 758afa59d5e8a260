"""The HTTP API: ``create_app(settings)`` wires the ledger, its views, authentication, the error
mapping (``api/errors.py``) and one router per resource (``api/routers/``)."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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
from events.leadership import lead_when_chosen
from events.ledger import Ledger
from events.log import tree_size
from projections.runner import FOLLOW_EVERY, FOLLOW_LATE_AFTER, Runner, follow

log = logging.getLogger("chartledger.jobs")


def signer_heartbeat(ledger: Ledger) -> Heartbeat:
    """The signer runs every T seconds; late once it has missed a round (2 T, and a second
    for the round itself); while the store fails it waits up to 4 T between tries."""
    every = ledger.checkpointer.every_seconds
    return Heartbeat(ledger.config.home, SIGNER, every, 2 * every + 1.0, ledger.db)


def _checkpoint_every(ledger: Ledger, stop: threading.Event) -> None:
    """Sign the log every T seconds while it grows, so a quiet spell leaves no tail unsigned."""

    def sign_if_due() -> None:
        with ledger.db.read() as c:
            size = tree_size(c)
        ledger.checkpointer.maybe_issue(size)

    every = ledger.checkpointer.every_seconds
    beat = signer_heartbeat(ledger)
    keep_running("checkpoints: signing", sign_if_due, stop, every, 4 * every, beat)


def _sign_when_chosen(ledger: Ledger, stop: threading.Event) -> None:
    """On SQLite every server process of the one host signs on its timer, as it always did (a
    size already signed is not signed again). On PostgreSQL, whose servers may be on several
    hosts, one signer at a time, chosen through the database (``events/leadership.py``)."""
    if ledger.db.dialect == "sqlite":
        _checkpoint_every(ledger, stop)
        return
    lead_when_chosen(ledger.config, SIGNER, stop, lambda down: _checkpoint_every(ledger, down))


def _follow_when_chosen(runner: Runner, stop: threading.Event, config: StoreConfig) -> None:
    """Keep the views caught up, from one server process only: the leader (a lock file in the
    home on SQLite, an advisory lock in the store on PostgreSQL). The others look again every
    few seconds, so a successor takes over if it stops."""
    heartbeat = Heartbeat(config.home, FOLLOWER, FOLLOW_EVERY, FOLLOW_LATE_AFTER, runner.ledger.db)
    lead_when_chosen(config, FOLLOWER, stop, lambda down: follow(runner, down, heartbeat=heartbeat))


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
            timer = threading.Thread(target=_sign_when_chosen, args=(ledger, stop), daemon=True)
            timer.start()
            views = threading.Thread(
                target=_follow_when_chosen,
                args=(services.runner, stop, settings.store),
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
    openapi.install(app, settings.limits)
    add_security_headers(app)  # outermost: every response, 413s, 431s and 500s too
    return app
