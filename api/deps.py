"""What routes depend on: the ledger, the views' runner, and who is calling (STYLE.md §6)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.activity import LastSeen, SessionActivity
from api.auth import Principal, authenticate, now
from api.errors import Unauthenticated
from api.idempotency.answers import Answers
from api.idempotency.middleware import begin
from api.jobs import Jobs
from api.refusal_budget import RefusalBudget
from api.refused_requests import refuse_role
from api.session_clocks import SharedSessionClocks
from api.settings import Settings
from api.shared_throttle import SharedLoginThrottle
from api.throttle import LoginThrottle, client_address
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
    last_seen: LastSeen  # session id -> when last used, shared by the server processes
    throttle: LoginThrottle  # failed logins by account and address, shared likewise
    answers: Answers  # first answers to keyed requests (api/idempotency/)
    jobs: Jobs  # long work run after its request is answered (api/jobs/)
    # which refusals of tokens naming no session are written (api/refusal_budget.py)
    refusals: RefusalBudget = field(default_factory=RefusalBudget)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        ledger = Ledger(settings.store)
        activity: LastSeen
        if ledger.db.dialect == "postgres":  # servers on several hosts: a table in the store
            activity = SharedSessionClocks(ledger.db, settings.idle_timeout.total_seconds())
        else:  # one host: a file its processes map (api/activity.py)
            activity = SessionActivity(settings.store.home / "session-activity")
        throttle: LoginThrottle
        if ledger.db.dialect == "postgres":  # every host counts together (docs/DEPLOYMENT.md)
            throttle = SharedLoginThrottle(ledger.db, settings.login_throttle)
        else:
            path = settings.store.home / "login-throttle"
            throttle = LoginThrottle(path, settings.login_throttle)
        answers = Answers(ledger.db, ledger.master_key)
        runner = SerialRunner(ledger)
        return cls(settings, ledger, runner, activity, throttle, answers, Jobs(ledger))


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


async def get_jobs(services: ServicesDep) -> Jobs:
    return services.jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]


bearer = HTTPBearer(auto_error=False, description="the token from POST /auth/login")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True)
class Caller:
    """Who sent the request, not yet checked: their bearer credentials, and the services that
    check them (``api.routing`` checks them in the worker thread that runs the route)."""

    services: Services
    credentials: HTTPAuthorizationCredentials | None
    address: str | None = None  # the client's (api/throttle.py), for refusals naming no one
    route: str = "?"  # the route asked for: method and path template, never the path's values
    patient_id: UUID | None = None  # the patient the path names, if any

    def principal(self) -> Principal:
        """The caller, checked against the ledger now (so revocation is immediate). A request
        without credentials is refused unrecorded: it is no decision about anyone."""
        if self.credentials is None or self.credentials.scheme.lower() != "bearer":
            raise Unauthenticated("no valid session")
        services = self.services
        return authenticate(
            services.ledger,
            services.settings,
            self.credentials.credentials,
            services.last_seen,
            address=self.address,
            budget=services.refusals,
        )

    def refuse_role(self, principal: Principal, roles: tuple[str, ...]) -> None:
        """Record that ``principal`` asked for this route, which needs one of ``roles``."""
        refuse_role(self.services.ledger, principal, self.route, roles, self.patient_id, now())

    @classmethod
    def of(cls, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Caller:
        services: Services = request.app.state.services
        address = client_address(request, services.settings.trusted_proxies)
        template = getattr(request.scope.get("route"), "path", None) or "?"
        try:
            patient_id = UUID(str(request.path_params["patient_id"]))
        except (KeyError, ValueError):
            patient_id = None
        return cls(services, credentials, address, f"{request.method} {template}", patient_id)


async def caller(request: Request, credentials: Credentials) -> Caller:
    return Caller.of(request, credentials)


CallerDep = Annotated[Caller, Depends(caller)]


def current_user(request: Request, credentials: Credentials) -> Principal:
    """The caller, checked against the ledger on every request (so revocation is immediate)."""
    caller = Caller.of(request, credentials)
    principal = caller.principal()
    # A keyed write answered before is answered again here, not run twice (api/idempotency/).
    begin(caller.services.answers, str(principal.user_id))
    return principal


CurrentUser = Annotated[Principal, Depends(current_user)]
