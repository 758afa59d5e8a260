"""api/deps.py's SerialRunner beside another process's runner, on SQLite and on PostgreSQL: a
request that needs the views at a position gets them there even when the other runner applies
every batch first (as the server process keeping the views caught up may)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from api.deps import SerialRunner
from domain.notes import Note
from domain.patients import Patient
from events.db import Database
from events.ledger import Ledger
from projections.rebuild import runner_for
from projections.runner import Entry, log_size
from tests.support import Chart

AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


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


def test_a_chart_batch_another_runner_applied_while_this_one_prepared_it_is_left_to_it(
    ledger: Ledger,
) -> None:
    """The chart reads back the rows of the entries a batch changes; applied meanwhile by the
    other runner, they already hold the batch, and folding it again cannot be done."""
    runner = AlwaysFirst(ledger)
    try:
        for i in range(3):
            patient = Patient.register(
                mrn=f"MRN-{i}", given_name="A", family_name="B", birth_date=AT.date(), sex="female"
            )
            note = Note.draft(patient_id=patient.id, author_id=uuid4(), kind="progress", text="a")
            ledger.save(patient, note)
            target = log_size(ledger.db)
            runner.catch_up_to(target)  # raised the fold's AssertionError before
            assert runner.applied()[1] >= target
    finally:
        runner.close()
