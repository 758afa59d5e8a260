"""Which views exist, and dropping and replaying them from the log."""

from __future__ import annotations

from collections.abc import Sequence

from events.ledger import Ledger
from projections.access_report import DisclosuresView
from projections.audit import AuditView
from projections.chart import ChartView
from projections.runner import Progress, Projection, Runner
from projections.schedule import ScheduleView


class UnknownProjection(LookupError):
    """A view name that no projection has."""


def all_projections() -> list[Projection]:
    return [AuditView(), ChartView(), DisclosuresView(), ScheduleView()]


def runner_for(ledger: Ledger) -> Runner:
    return Runner(ledger, all_projections())


def rebuild(ledger: Ledger, names: Sequence[str] = (), progress: Progress | None = None) -> int:
    """Drop the named views (every view when none is named) and replay them; return the size."""
    known = [p.name for p in all_projections()]
    for name in names:
        if name not in known:
            raise UnknownProjection(f"no view named {name!r}: choose from {', '.join(known)}")
    return runner_for(ledger).rebuild(list(names) or None, progress)
