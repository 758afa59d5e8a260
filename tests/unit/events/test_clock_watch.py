"""events/clock_watch.py on the real clocks: an unmoved clock is never a step; a drop beyond the
tolerance is logged once, with its size and the time of the first event recorded after it (the
real step, under libfaketime, is tests/faults/test_clock_stepped_back.py)."""

from __future__ import annotations

import logging

import pytest

from events.clock_watch import ClockWatch


def test_a_clock_that_only_runs_forward_is_never_a_step() -> None:
    watch = ClockWatch()
    assert [watch.check("2026-12-07T21:00:00.000000Z") for _ in range(1000)] == [None] * 1000


def test_a_drop_beyond_the_tolerance_is_logged_with_its_size(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A negative tolerance makes the clocks' own unmoved offset count as a step of ~0 s.
    watch = ClockWatch(tolerance=-1.0)
    assert watch.check("2026-12-07T21:00:00.000000Z") is None  # the first call sets the baseline
    with caplog.at_level(logging.WARNING, logger="chartledger.clock"):
        back = watch.check("2026-12-07T21:00:01.000000Z")
    assert back is not None and abs(back) < 0.5
    [line] = caplog.messages
    assert line.startswith("clock stepped back by ") and "2026-12-07T21:00:01.000000Z" in line
