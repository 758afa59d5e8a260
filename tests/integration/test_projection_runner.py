"""projections/runner.py on both stores: exactly once, rebuildable, and honest about disposal."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from domain.credentials import Account
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from projections.audit import COLUMNS, AuditView, audit_report
from projections.rebuild import runner_for
from projections.runner import PositionMoved, Runner, follow, read_entries
from tests.integration.test_ledger_store import QUIET, raw
from tests.support import Chart, append_charts, leaves, patient, user


def table(ledger: Ledger, name: str) -> list[tuple[Any, ...]]:
    with ledger.db.read() as c:
        c.execute(f"SELECT * FROM {name} ORDER BY 1, 2")
        return [tuple(r) for r in c.fetchall()]


def append_some(ledger: Ledger, n: int = 5) -> list[str]:
    people = [patient() for _ in range(n)]
    for i, who in enumerate(people):
        with acting(user(), f"session-{i}"):
            chart = Chart(subjects=(who,), text="opened")
            chart.note(subjects=(who,), text="more")
            ledger.save(chart)
    return people


def test_catch_up_applies_every_event_once_and_records_where_it_stopped(ledger: Ledger) -> None:
    runner = Runner(ledger, [AuditView()])
    append_some(ledger)
    assert runner.catch_up() == leaves(ledger)
    assert [r[0] for r in table(ledger, "audit_events")] == list(range(leaves(ledger)))
    append_some(ledger, 2)
    assert runner.catch_up() == leaves(ledger)
    assert runner.catch_up() == leaves(ledger)  # nothing new: nothing applied twice
    assert [r[0] for r in table(ledger, "audit_events")] == list(range(leaves(ledger)))
    assert runner.positions() == {"audit": leaves(ledger)}


def test_a_reader_catching_up_stops_at_its_target_though_a_writer_keeps_appending(
    ledger: Ledger,
) -> None:
    """A read waits for the writes committed before it asked, not for a long import's later
    ones (issue 17: a chart read chased a 20,000-result import for 19 s). Here every batch the
    reader applies is followed by another write, as a busy import's would be."""
    runner = Runner(ledger, [AuditView()])
    append_some(ledger)
    target = leaves(ledger)
    rounds = []

    def a_writer_appends_meanwhile(done: int, total: int) -> None:
        rounds.append(done)
        if len(rounds) < 20:  # without the target, the reader would follow all 20
            ledger.save(Chart(subjects=("patient:busy",), text="more"))

    reached = runner.catch_up(a_writer_appends_meanwhile, until=target)
    assert reached == target < leaves(ledger) and len(rounds) == 1
    assert runner.catch_up(a_writer_appends_meanwhile) == leaves(ledger) and len(rounds) == 20


def test_a_rebuilt_view_equals_the_live_one_row_for_row(ledger: Ledger) -> None:
    runner = Runner(ledger, [AuditView()])
    for _ in range(3):  # built incrementally, in several batches
        append_some(ledger, 3)
        runner.catch_up()
    live = table(ledger, "audit_events"), table(ledger, "audit_patients")
    assert runner.rebuild(["audit"]) == leaves(ledger)
    assert (table(ledger, "audit_events"), table(ledger, "audit_patients")) == live
    assert len(live[0]) == leaves(ledger)


def test_runners_racing_on_one_store_apply_each_event_exactly_once(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    append_some(ledger, 20)
    others = [Ledger(store_config, **QUIET) for _ in range(3)]
    runners = [Runner(other, [AuditView()]) for other in others]
    errors: list[BaseException] = []

    def run(runner: Runner) -> None:
        for _ in range(5):
            try:
                runner.catch_up()
            except Exception as e:  # a lost race is allowed to fail, never to double-apply
                errors.append(e)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Runner(ledger, [AuditView()]).catch_up()
    for other in others:
        other.close()
    assert [r[0] for r in table(ledger, "audit_events")] == list(range(leaves(ledger)))


def test_the_audit_row_comes_from_the_header_so_it_outlives_disposal(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    who, reader = patient(), user()
    with acting(reader, "session-x"):
        ledger.save(Chart(subjects=(who,), text="opened"))
    with raw(store_config) as db:
        db.execute("DELETE FROM ledger_data_keys WHERE subject = ?", (who,))
    runner = Runner(ledger, [AuditView()])
    runner.catch_up()
    (row,) = audit_report(ledger.db, patient_id=who.removeprefix("patient:"))
    assert row["user_id"] == reader.removeprefix("user:")
    assert (row["action"], row["source"], row["outcome"]) == ("create", "session-x", "success")
    assert row["event_type"] == "tests.support:Chart.Opened"


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("descending", [False, True])
def test_the_audit_report_sorts_by_every_field(
    ledger: Ledger, column: str, descending: bool
) -> None:
    append_some(ledger, 6)
    Runner(ledger, [AuditView()]).catch_up()
    rows = audit_report(ledger.db, sort_by=column, descending=descending)
    assert len(rows) == leaves(ledger)

    def ascending(r: dict[str, Any]) -> tuple[Any, ...]:
        # Empty values first, then by the value (text by its bytes), then by log position.
        value = r[column]
        return (
            value is not None,
            value.encode() if isinstance(value, str) else value or 0,
            r["position"],
        )

    expected = sorted(rows, key=ascending, reverse=descending)
    assert [r["position"] for r in rows] == [r["position"] for r in expected]


def test_the_audit_report_keeps_to_its_period(ledger: Ledger) -> None:
    append_some(ledger, 4)
    Runner(ledger, [AuditView()]).catch_up()
    everything = audit_report(ledger.db)
    times = sorted(r["event_time"] for r in everything)
    since, until = times[2], times[-2]
    inside = audit_report(ledger.db, since, until)
    assert inside and all(since <= r["event_time"] < until for r in inside)
    assert len(inside) == sum(1 for t in times if since <= t < until)


def test_an_unknown_sort_field_is_refused(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match=r"^cannot sort by 'name; DROP TABLE x'"):
        audit_report(ledger.db, sort_by="name; DROP TABLE x")


def test_a_follower_keeps_the_views_caught_up_until_stopped(ledger: Ledger) -> None:
    runner = Runner(ledger, [AuditView()])
    stop = threading.Event()
    follower = threading.Thread(target=follow, args=(runner, stop, 0.01))
    follower.start()
    try:
        append_some(ledger, 3)
        deadline = time.monotonic() + 30
        while runner.positions()["audit"] < leaves(ledger) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.positions() == {"audit": leaves(ledger)}
    finally:
        stop.set()
        follower.join(timeout=30)
    assert not follower.is_alive()


def test_a_runner_that_lost_the_race_for_a_batch_backs_off_without_touching_the_views(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    """Two processes' runners (here two ledgers on one store) read the same batch; the one
    that applies it second gets PositionMoved, not a clash with the rows the first wrote."""
    append_charts(ledger, [patient() for _ in range(3)])
    first, second = runner_for(ledger), runner_for(Ledger(store_config))
    positions = second.positions()
    batch = list(read_entries(second.ledger, min(positions.values())))
    first.catch_up()
    before = table(ledger, "audit_events")
    with pytest.raises(PositionMoved):
        second._apply(positions, batch)
    assert table(ledger, "audit_events") == before
    second.catch_up()  # and the next round simply finds nothing to do
    assert table(ledger, "audit_events") == before


def test_an_audit_view_built_before_rows_named_their_target_is_replayed_with_them(
    ledger: Ledger,
) -> None:
    acted_on = user()
    with acting(user(), "session-y"):
        ledger.save(Chart(subjects=(patient(), acted_on), text="opened"))
    runner = Runner(ledger, [AuditView()])
    runner.catch_up()
    # The table as it was before it had the target and detail columns, fully applied.
    with ledger.db.write(lock=False) as c:
        c.execute("DROP TABLE audit_events")
        c.execute(
            "CREATE TABLE audit_events (position INTEGER PRIMARY KEY, event_time TEXT NOT NULL, "
            "activity_time TEXT NOT NULL, patient_id TEXT, user_id TEXT, action TEXT NOT NULL, "
            "data_category TEXT NOT NULL, outcome TEXT NOT NULL, source TEXT NOT NULL, "
            "purpose TEXT, event_type TEXT NOT NULL)"
        )
    assert runner.positions() == {"audit": leaves(ledger)}
    again = Runner(ledger, [AuditView()])
    assert again.positions() == {"audit": 0}  # dropped, to be replayed
    again.catch_up()
    (row,) = [r for r in audit_report(ledger.db) if r["source"] == "session-y"]
    assert row["target_user_id"] == acted_on.removeprefix("user:") and row["detail"] is None


def test_an_audit_view_built_before_rows_said_why_they_failed_is_replayed_with_reasons(
    ledger: Ledger,
) -> None:
    victim, at = uuid4(), datetime.now(UTC)
    account = Account.open(username="victim", user_id=victim, password_hash=None, at=at)
    account.record_failure(reason="password", at=at, address="192.0.2.9")
    with acting(None):  # a failed login: nobody is logged in
        ledger.save(account)
    runner = Runner(ledger, [AuditView()])
    runner.catch_up()
    # The table as it was before the reason column, with target and detail, fully applied.
    with ledger.db.write(lock=False) as c:
        c.execute("DROP TABLE audit_events")
        c.execute(
            "CREATE TABLE audit_events (position INTEGER PRIMARY KEY, event_time TEXT NOT NULL, "
            "activity_time TEXT NOT NULL, patient_id TEXT, user_id TEXT, action TEXT NOT NULL, "
            "data_category TEXT NOT NULL, outcome TEXT NOT NULL, source TEXT NOT NULL, "
            "purpose TEXT, event_type TEXT NOT NULL, target_user_id TEXT, detail TEXT)"
        )
    again = Runner(ledger, [AuditView()])
    assert again.positions() == {"audit": 0}  # dropped, to be replayed
    again.catch_up()
    # Filed under the account it targeted, with why it failed.
    (row,) = [r for r in audit_report(ledger.db, user_id=str(victim)) if r["outcome"] == "failure"]
    assert (row["event_type"], row["reason"]) == (
        "domain.credentials:Account.LoginFailed",
        "password",
    )
