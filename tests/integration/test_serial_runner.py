"""api/deps.py's SerialRunner beside another process's runner, on SQLite and on PostgreSQL: a
request that needs the views at a position gets them there even when the other runner applies
every batch first (as the server process keeping the views caught up may)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from api.deps import SerialRunner
from events.db import Database
from events.ledger import Ledger
from projections.rebuild import runner_for
from projections.runner import Entry, log_size
from tests.support import Chart


class AlwaysFirst(SerialRunner):
    """A SerialRunner whose every batch is applied by ``other`` while it prepares its own,
    after one more event is appended."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger)
        self.other = runner_for(Ledger(ledger.config))
        self.lost = 0
        for projection in self.projections.values():
            projection.prepare = self._beaten(projection.prepare)  # type: ignore[method-assign]

    def _beaten(self, prepare: Any) -> Any:
        def prepare_after_the_other(db: Database, entries: Sequence[Entry], since: int) -> Any:
            self.other.catch_up()
            # The log grows meanwhile, as a busy server's does: a retry always finds more.
            self.other.ledger.save(Chart(subjects=("patient:busy",), text="y"))
            self.lost += 1
            return prepare(db, entries, since)

        return prepare_after_the_other

    def close(self) -> None:
        self.other.ledger.close()


def test_the_views_reach_the_target_though_another_runner_applies_every_batch_first(
    ledger: Ledger,
) -> None:
    runner = AlwaysFirst(ledger)
    try:
        for i in range(3):
            ledger.save(Chart(subjects=(f"patient:{i}",), text="x"))
            target = log_size(ledger.db)
            runner.catch_up_to(target)  # raised PositionMoved after 21 lost races before
            assert runner.applied()[1] >= target
        assert runner.lost >= 3
    finally:
        runner.close()
