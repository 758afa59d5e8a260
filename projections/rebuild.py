"""Which views exist, and dropping and replaying them from the log.

A long replay uses two processes when the machine has two cores: the chart view in one, the
others in this one. Each reads the log and opens what its views need (the chart's process does
not open the reads); each claims its views' batches as every runner does, so the result is the
one a single process gives, row for row.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading
from collections.abc import Sequence
from multiprocessing.sharedctypes import Synchronized

from events.config import StoreConfig
from events.ledger import Ledger
from projections.access_report import DisclosuresView
from projections.audit import AuditView
from projections.care import CareView
from projections.chart import ChartView
from projections.runner import PRELOAD_AFTER, Progress, Projection, Runner, log_size
from projections.schedule import ScheduleView

APART = "chart"  # the view replayed in a process of its own: about half of the work


class UnknownProjection(LookupError):
    """A view name that no projection has."""


class ReplayFailed(RuntimeError):
    """The process replaying part of the views ended without finishing."""


def all_projections() -> list[Projection]:
    return [AuditView(), CareView(), ChartView(), DisclosuresView(), ScheduleView()]


def runner_for(ledger: Ledger) -> Runner:
    return Runner(ledger, all_projections())


def rebuild(
    ledger: Ledger,
    names: Sequence[str] = (),
    progress: Progress | None = None,
    workers: int | None = None,
) -> int:
    """Drop the named views (every view when none is named) and replay them; return the size.

    ``workers``: processes to replay in (1 or 2); by default 2 for a long log on a machine
    with more than one core.
    """
    known = [p.name for p in all_projections()]
    for name in names:
        if name not in known:
            raise UnknownProjection(f"no view named {name!r}: choose from {', '.join(known)}")
    runner = runner_for(ledger)
    chosen = list(names) or known
    if workers is None:
        many = (os.cpu_count() or 1) > 1 and log_size(ledger.db) > PRELOAD_AFTER
        workers = 2 if many else 1
    if workers < 2 or APART not in chosen or len(chosen) < 2:
        size = runner.rebuild(chosen, progress)
    else:
        runner.reset(chosen)
        _replay_beside(ledger, [runner.projections[n] for n in chosen if n != APART], progress)
        size = runner.catch_up()  # whatever was appended meanwhile, for every view
    _analyze(ledger, [runner.projections[n] for n in chosen])
    return size


def _analyze(ledger: Ledger, projections: list[Projection]) -> None:
    """On PostgreSQL, gather the replayed views' statistics now. The planner plans from them,
    and autovacuum gathers them only a while after a table is filled: until then a query that
    has an index read the whole view (a day's audit rows, 60 ms at 1M events where 0.3 ms
    after ANALYZE). A role that does not own the tables is told so by PostgreSQL (a warning,
    not an error), and autovacuum does it later."""
    if ledger.db.dialect != "postgres":
        return
    with ledger.db.write(lock=False) as c:
        for projection in projections:
            for table in projection.tables:
                c.execute(f"ANALYZE {table}")


def _replay_beside(ledger: Ledger, here: list[Projection], progress: Progress | None) -> None:
    """Replay ``APART`` in a child process while this one replays ``here``."""
    context = _context()
    reached: Synchronized[int] = context.Value("q", 0, lock=False)  # type: ignore[assignment]
    child = context.Process(
        target=_replay_apart, args=(ledger.config, reached), name=f"replay {APART}", daemon=True
    )
    child.start()
    try:
        shown = None if progress is None else _slower(progress, reached)
        size = Runner(ledger, here).catch_up(shown)
        while child.is_alive():
            child.join(0.25)
            if shown is not None:
                shown(size, size)
        if child.exitcode != 0:
            raise ReplayFailed(f"replaying the {APART} view failed (exit code {child.exitcode})")
    finally:
        if child.is_alive():
            child.terminate()
            child.join()


def _context() -> multiprocessing.context.BaseContext:
    """fork when this process runs no other thread: the child starts at once, with everything
    imported (it opens its own store, and never touches the connections it inherits). With
    other threads (a PostgreSQL connection pool's, say), a fork could copy a lock one of them
    holds, so the child starts from the fork server instead, this module imported in advance."""
    if threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _slower(progress: Progress, reached: Synchronized[int]) -> Progress:
    """Progress as the slower of the two processes has it."""

    def shown(position: int, size: int) -> None:
        progress(min(position, reached.value), size)

    return shown


def _replay_apart(config: StoreConfig, reached: Synchronized[int]) -> None:
    ledger = Ledger(config)
    try:
        runner = Runner(ledger, [p for p in all_projections() if p.name == APART])

        def mark(position: int, _size: int) -> None:
            reached.value = position

        mark(runner.catch_up(mark), 0)
    finally:
        ledger.close()
