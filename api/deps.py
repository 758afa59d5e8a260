"""What routes depend on: the ledger, the views' runner, and who is calling (STYLE.md §6)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.activity import SessionActivity
from api.auth import Principal, authenticate
from api.errors import Unauthenticated
from api.settings import Settings
from api.throttle import LoginThrottle
from events.ledger import Ledger
from projections.rebuild import all_projections
from projections.runner import PositionMoved, Progress, Runner, log_size

MOVED_RETRIES = 20


class SerialRunner(Runner):
    """The views' runner, shared by request threads and the follower: one catch-up at a time in
    this process; a batch applied first by another process is simply read again."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger, all_projections())
        self._lock = threading.Lock()

    def catch_up(self, progress: Progress | None = None, until: int | None = None) -> int:
        """Up to ``until``, by default the log as it stands now: the follower's rounds end
        between a long import's batches, so a request waiting for this lock is not kept behind
        the import (a chart read on PostgreSQL waited 12 s)."""
        with self._lock:
            return self._catch_up_locked(progress, log_size(self.db) if until is None else until)

    def _catch_up_locked(self, progress: Progress | None = None, target: int | None = None) -> int:
        # A batch applied first by another process (another server worker, a CLI command) is
        # read again from where that one left the views: each retry starts further on. With a
        # target, the views reaching it is enough, whoever applied the batches.
        for _ in range(MOVED_RETRIES):
            if target is not None and (lowest := self.applied()[1]) >= target:
                return lowest
            try:
                return super().catch_up(progress, until=target)
            except PositionMoved:
                continue
        return super().catch_up(progress, until=target)

    def catch_up_to(self, target: int | None = None) -> None:
        """As ``Runner.catch_up_to``, but requests waiting for one catch-up share it: whoever
        gets the lock after it checks the views again, and has nothing to do if they reached
        its target meanwhile (the lock is never held when the views are already there)."""
        size, lowest = self.applied()
        target = size if target is None else target
        if lowest >= target:
            return
        with self._lock:
            self._catch_up_locked(target=target)


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    runner: SerialRunner
    last_seen: SessionActivity  # session id -> when last used, shared by the server processes
    throttle: LoginThrottle  # failed logins by account and address, shared likewise

    @classmethod
    def open(cls, settings: Settings) -> Services:
        ledger = Ledger(settings.store)
        activity = SessionActivity(settings.store.home / "session-activity")
        throttle = LoginThrottle(settings.store.home / "login-throttle", settings.login_throttle)
        return cls(settings, ledger, SerialRunner(ledger), activity, throttle)


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_ledger(services: ServicesDep) -> Ledger:
    return services.ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


async def get_runner(services: ServicesDep) -> SerialRunner:
    return services.runner


RunnerDep = Annotated[SerialRunner, Depends(get_runner)]


bearer = HTTPBearer(auto_error=False, description="the token from POST /auth/login")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class Caller:
    """Who sent the request, not yet checked: their bearer credentials, and the services that
    check them (``api.routing`` checks them in the worker thread that runs the route)."""

    services: Services
    credentials: HTTPAuthorizationCredentials | None

    def principal(self) -> Principal:
        """The caller, checked against the ledger now (so revocation is immediate)."""
        if self.credentials is None or self.credentials.scheme.lower() != "bearer":
            raise Unauthenticated("no valid session")
        services = self.services
        return authenticate(
            services.ledger, services.settings, self.credentials.credentials, services.last_seen
        )


async def caller(services: ServicesDep, credentials: Credentials) -> Caller:
    return Caller(services, credentials)


CallerDep = Annotated[Caller, Depends(caller)]


def current_user(services: ServicesDep, credentials: Credentials) -> Principal:
    """The caller, checked against the ledger on every request (so revocation is immediate)."""
    return Caller(services, credentials).principal()


CurrentUser = Annotated[Principal, Depends(current_user)]
