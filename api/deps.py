"""What routes depend on: the ledger, the views' runner, and who is calling (STYLE.md §6)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request

from api.settings import Settings
from events.ledger import Ledger
from projections.rebuild import all_projections
from projections.runner import PositionMoved, Progress, Runner


class SerialRunner(Runner):
    """The views' runner, shared by request threads and the follower: one catch-up at a time in
    this process; a batch applied first by another process is simply read again."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger, all_projections())
        self._lock = threading.Lock()

    def catch_up(self, progress: Progress | None = None) -> int:
        with self._lock:
            try:
                return super().catch_up(progress)
            except PositionMoved:
                return super().catch_up(progress)


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    runner: SerialRunner
    last_seen: dict[str, float] = field(default_factory=dict)  # session id -> monotonic time

    @classmethod
    def open(cls, settings: Settings) -> Services:
        ledger = Ledger(settings.store)
        return cls(settings=settings, ledger=ledger, runner=SerialRunner(ledger))


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_ledger(services: ServicesDep) -> Ledger:
    return services.ledger


LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def get_runner(services: ServicesDep) -> SerialRunner:
    return services.runner


RunnerDep = Annotated[SerialRunner, Depends(get_runner)]

Dependency = Callable[..., Any]
