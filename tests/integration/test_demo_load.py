"""`chartledger demo --patients N` on both stores (issue 19, "Also seen"): any N it accepts
loads, N it does not take is one line and exit 2, and a demo that fails part-way appends
nothing at all: no record, no logins file, and loading again then works."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import demo
from api.cli import main
from api.demo import MAX_PATIENTS, already_loaded, load_demo, slot_start
from api.demo_logins import remembered
from api.settings import Settings
from domain.appointments import Appointment
from domain.credentials import account_id
from domain.errors import DoubleBooking
from domain.labs import LabResult
from events.config import StoreConfig
from events.ledger import Ledger
from tests.support import leaves, set_env

MONDAY = date(2026, 11, 30)


def test_a_demo_that_collides_part_way_appends_nothing_and_loads_after(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule before the fix wrapped past midnight onto an earlier slot after 720
    patients; the same fault, in a schedule four slots long, hits the 13th patient here."""
    settings = Settings(store=ledger.config, pbkdf2_iterations=1_000)
    before = leaves(ledger)

    def wrapping(monday: date, slot: int) -> datetime:
        return datetime(monday.year, monday.month, monday.day, 9, tzinfo=UTC) + timedelta(
            minutes=30 * (slot % 4)
        )

    monkeypatch.setattr(demo, "slot_start", wrapping)
    with pytest.raises(DoubleBooking):
        load_demo(ledger, settings, patients=13)
    assert leaves(ledger) == before  # not one of the 12 patients before it, nor the logins
    assert not already_loaded(ledger) and remembered(ledger.config.home) == {}
    monkeypatch.undo()
    assert load_demo(ledger, settings, patients=13)
    assert leaves(ledger) > before and already_loaded(ledger)


def test_one_demo_save_records_each_stream_under_the_user_who_made_it(ledger: Ledger) -> None:
    settings = Settings(store=ledger.config, pbkdf2_iterations=1_000)
    assert load_demo(ledger, settings, patients=4)
    desk = ledger.repository.get(account_id("frontdesk")).user_id
    ames = ledger.repository.get(account_id("dr.ames")).user_id
    actors: dict[str, set[str | None]] = {}
    for stored in ledger.recorder.select_notifications(1, 100_000):
        header, event = ledger.mapper.open(stored)
        actors.setdefault(type(event).__qualname__.split(".")[0], set()).add(header.actor)
    assert actors[Appointment.__name__] == {f"user:{desk}"}  # booked by the front desk...
    assert f"user:{ames}" in actors[LabResult.__name__]  # ...for the clinicians, who chart


def test_demo_patients_out_of_bounds_are_one_line_and_exit_2(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_env(store_config, monkeypatch)
    assert main(["init", "--name", "Test Practice"]) == 0
    for wrong in ("0", str(MAX_PATIENTS + 1)):
        capsys.readouterr()
        assert main(["demo", "--patients", wrong]) == 2
        err = capsys.readouterr().err.strip()
        said = f"chartledger: error: --patients must be from 1 to 10000, not {wrong}"
        assert err.splitlines() == [said], err


@settings(max_examples=200, deadline=None)
@given(st.integers(0, MAX_PATIENTS // 3 + 1), st.integers(0, MAX_PATIENTS // 3 + 1))
def test_distinct_demo_slots_never_overlap_and_stay_in_office_hours(a: int, b: int) -> None:
    first, second = slot_start(MONDAY, a), slot_start(MONDAY, b)
    assert (a == b) == (first == second)
    assert a == b or abs(first - second) >= timedelta(minutes=30)
    assert (
        first.weekday() < 5
        and first.hour >= 9
        and first + timedelta(minutes=30) <= (first.replace(hour=17, minute=0))
    )
    if a < 80:  # the first 240 patients are booked where they always were
        day = MONDAY + timedelta(days=a % 5)
        old = datetime.combine(day, time(9), UTC) + timedelta(minutes=30 * (a // 5))
        assert first == old
