"""Runner.catch_up_for: a reader of one view waits only for the events that view reads, on
SQLite and on PostgreSQL (projections/runner.py). It is one statement; these hold it to what
the view's position, the log's size and the pending events' modules say."""

from __future__ import annotations

from datetime import date

import pytest

from domain.patients import Patient
from events.ledger import Ledger
from projections import runner as runner_module
from projections.rebuild import runner_for
from projections.runner import Runner, log_size
from tests.support import Chart


def ignored_by_the_chart(ledger: Ledger, n: int) -> None:
    for i in range(n):  # tests.support's Chart is no module of the chart view
        ledger.save(Chart(subjects=(f"patient:{i}",), text="x"))


def read_by_the_chart(ledger: Ledger) -> None:
    ledger.save(
        Patient.register(
            mrn="MRN-1", given_name="A", family_name="B", birth_date=date(1970, 1, 1), sex="male"
        )
    )


def chart_position(runner: Runner) -> int:
    return runner.positions()["chart"]


@pytest.fixture
def runner(ledger: Ledger) -> Runner:
    runner = runner_for(ledger)
    runner.catch_up()
    return runner


def test_events_the_chart_does_not_read_are_not_waited_for(ledger: Ledger, runner: Runner) -> None:
    before = chart_position(runner)
    ignored_by_the_chart(ledger, 3)
    runner.catch_up_for("chart")
    assert chart_position(runner) == before < log_size(ledger.db)


def test_an_event_the_chart_reads_is_applied_with_everything_before_it(
    ledger: Ledger, runner: Runner
) -> None:
    ignored_by_the_chart(ledger, 2)
    read_by_the_chart(ledger)
    ignored_by_the_chart(ledger, 2)
    runner.catch_up_for("chart")
    assert chart_position(runner) == log_size(ledger.db)


def test_more_pending_events_than_it_looks_through_are_simply_applied(
    ledger: Ledger, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "PENDING_SCAN", 3)
    before = chart_position(runner)
    ignored_by_the_chart(ledger, 3)
    runner.catch_up_for("chart")
    assert chart_position(runner) == before  # three: looked through, none concerns the chart
    ignored_by_the_chart(ledger, 1)
    runner.catch_up_for("chart")
    assert chart_position(runner) == log_size(ledger.db)  # four: not looked through


def test_a_target_the_view_has_reached_asks_for_nothing(ledger: Ledger, runner: Runner) -> None:
    reached = chart_position(runner)
    read_by_the_chart(ledger)
    runner.catch_up_for("chart", target=reached)
    assert chart_position(runner) == reached
    runner.catch_up_for("chart", target=reached + 1)
    assert chart_position(runner) == log_size(ledger.db)


def test_the_log_size_and_the_lowest_view_come_from_one_statement(
    ledger: Ledger, runner: Runner
) -> None:
    size = log_size(ledger.db)
    assert runner.applied() == (size, size)
    ignored_by_the_chart(ledger, 2)
    runner.catch_up_for("chart")
    assert runner.applied() == (size + 2, min(runner.positions().values()))
    assert min(runner.positions().values()) == chart_position(runner) == size


def test_what_a_reader_found_unread_is_not_looked_at_again_and_what_follows_is(
    ledger: Ledger, runner: Runner
) -> None:
    before = chart_position(runner)
    for _ in range(3):  # each call looks past what the last found
        ignored_by_the_chart(ledger, 2)
        runner.catch_up_for("chart")
        assert chart_position(runner) == before
    read_by_the_chart(ledger)
    runner.catch_up_for("chart")
    assert chart_position(runner) == log_size(ledger.db)
    ignored_by_the_chart(ledger, 2)
    runner.catch_up_for("chart", target=log_size(ledger.db) - 1)  # a target inside what it knows
    ignored_by_the_chart(ledger, 1)
    runner.catch_up_for("chart")
    read_by_the_chart(ledger)
    runner.catch_up_for("chart")
    assert chart_position(runner) == log_size(ledger.db)


def test_read_for_answers_from_a_view_that_holds_every_write_before_it(
    ledger: Ledger, runner: Runner
) -> None:
    """The check and the read go together; a view found behind is caught up and read again,
    so the answer holds the patient registered just before."""
    rows = runner.read_for("chart", "SELECT COUNT(*) FROM chart_entries", ())
    before = rows[0][0]
    read_by_the_chart(ledger)
    ignored_by_the_chart(ledger, 2)
    rows = runner.read_for("chart", "SELECT COUNT(*) FROM chart_entries", ())
    assert rows[0][0] == before + 1
    assert chart_position(runner) == log_size(ledger.db)


def test_read_for_does_not_wait_for_events_the_view_does_not_read(
    ledger: Ledger, runner: Runner
) -> None:
    read_by_the_chart(ledger)
    runner.catch_up_for("chart")
    reached = chart_position(runner)
    ignored_by_the_chart(ledger, 3)
    rows = runner.read_for("chart", "SELECT COUNT(*) FROM chart_entries", ())
    assert rows[0][0] == 1
    assert chart_position(runner) == reached < log_size(ledger.db)
