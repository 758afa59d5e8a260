"""projections/chart.py on both stores, with the stand-in Chart aggregate of tests/support.py
(the clinical aggregates have their own tests): live equals rebuilt, and ``as_of`` folds the
patient's chain up to any moment."""

from __future__ import annotations

from datetime import UTC, datetime

from events.ledger import Ledger
from projections.chart import ChartView, as_of, chart
from projections.runner import Runner
from tests.support import Chart, patient
from verify.canonical import format_timestamp

MODULES = {"tests.support"}


def rows(ledger: Ledger) -> list[tuple[object, ...]]:
    with ledger.db.read() as c:
        c.execute("SELECT * FROM chart_entries ORDER BY entry_id")
        return [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in c.fetchall()
        ]


def now() -> str:
    return format_timestamp(datetime.now(UTC))


def test_the_chart_follows_each_entry_to_its_latest_state(ledger: Ledger) -> None:
    runner = Runner(ledger, [ChartView(MODULES)])
    who = patient()
    first = Chart(subjects=(who,), text="a")
    ledger.save(first)
    runner.catch_up()
    first.note(subjects=(who,), text="b")
    second = Chart(subjects=(who,), text="c")
    ledger.save(first, second)
    runner.catch_up()
    (a, b) = chart(ledger.db, who.removeprefix("patient:"))
    assert (a.entry_id, a.state["texts"], a.version) == (first.id, ["a", "b"], 2)
    assert (b.entry_id, b.state["texts"], b.version) == (second.id, ["c"], 1)


def test_a_rebuilt_chart_equals_the_live_one_byte_for_byte(ledger: Ledger) -> None:
    runner = Runner(ledger, [ChartView(MODULES)])
    people = [patient() for _ in range(4)]
    charts = {p: Chart(subjects=(p,), text="opened") for p in people}
    for round_ in range(3):
        for p, c in charts.items():
            c.note(subjects=(p,), text=f"round {round_}")
            ledger.save(c)
        runner.catch_up()
    live = rows(ledger)
    runner.rebuild(["chart"])
    assert rows(ledger) == live and len(live) == 4


def test_as_of_returns_the_chart_as_it_stood_then(ledger: Ledger) -> None:
    runner = Runner(ledger, [ChartView(MODULES)])
    who = patient()
    entry = Chart(subjects=(who,), text="original")
    ledger.save(entry)
    before = now()
    entry.note(subjects=(who,), text="later")
    ledger.save(entry)
    runner.catch_up()
    pid = who.removeprefix("patient:")
    (then,) = as_of(ledger, pid, before, MODULES)
    assert then.state["texts"] == ["original"] and then.version == 1
    assert as_of(ledger, pid, now(), MODULES) == chart(ledger.db, pid)
    assert as_of(ledger, pid, "2000-01-01T00:00:00.000000Z", MODULES) == []
