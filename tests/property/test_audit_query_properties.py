"""The audit queries' encoding rules, for any input: an RFC 3339 instant spelled at any offset
normalises to the one ledger timestamp of that instant; the CSV guard is undone exactly and
leaves no cell a spreadsheet would run; the refusal budget writes within its bounds and
accounts for every refusal it did not write."""

from __future__ import annotations

import csv
import io
import itertools
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.csv_export import guard, to_csv, unguard
from api.instants import PATTERN, NotAnInstant, normalise_instant
from api.refusal_budget import RefusalBudget
from verify.canonical import format_timestamp

SETTINGS = settings(max_examples=300, deadline=None)

# Instants whose every spelling stays within years 1..9999 (a day's margin either side).
instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def spelled(moment: datetime, offset: timezone, digits: int, upper: bool) -> str:
    """``moment`` at ``offset`` in RFC 3339, with ``digits`` fractional digits (its
    microseconds, then zeros; none if 0 and there are none), ``Z`` for a zero offset."""
    local = moment.astimezone(offset)
    text = _seconds(local)
    fraction = f"{local.microsecond:06d}".ljust(max(digits, 6), "0")
    if digits or local.microsecond:
        text += "." + fraction[: max(digits, 6)]
    minutes = int(local.utcoffset().total_seconds()) // 60  # type: ignore[union-attr]
    if minutes == 0:
        zone = "Z" if upper else "z"
    else:
        sign = "-" if minutes < 0 else "+"
        zone = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return (text if upper else text.replace("T", "t")) + zone


def _seconds(moment: datetime) -> str:
    # Not strftime: its %Y does not pad years before 1000 on every platform.
    return moment.replace(tzinfo=None, microsecond=0).isoformat()


@SETTINGS
@given(instants, offsets, st.integers(min_value=0, max_value=9), st.booleans())
def test_any_offset_normalises_to_the_same_instant(
    moment: datetime, offset: timezone, digits: int, upper: bool
) -> None:
    text = spelled(moment, offset, digits, upper)
    assert normalise_instant(text) == format_timestamp(moment), text


@SETTINGS
@given(instants, offsets, st.integers(min_value=1, max_value=999))
def test_digits_past_the_microsecond_round_up(
    moment: datetime, offset: timezone, nanos: int
) -> None:
    # An event at a whole microsecond is at or after ``moment + n ns`` exactly when it is at or
    # after the next microsecond.
    text = spelled(moment, offset, 6, True)
    head, zone = text[:26], text[26:]
    assert normalise_instant(f"{head}{nanos:03d}{zone}") == format_timestamp(
        moment + timedelta(microseconds=1)
    )


@SETTINGS
@given(instants, st.sampled_from(["", "T", "t", ":00", "+0100", "+01", "UTC", " Z", "Z "]))
def test_a_time_without_a_proper_offset_is_refused(moment: datetime, tail: str) -> None:
    text = _seconds(moment) + tail
    with pytest.raises(NotAnInstant) as refused:
        normalise_instant(text)
    assert text not in str(refused.value)


@SETTINGS
@given(st.text(max_size=40))
def test_the_pattern_and_the_parser_agree_on_the_form(text: str) -> None:
    try:
        normalise_instant(text)
    except NotAnInstant:
        return
    assert re.fullmatch(PATTERN.strip("^$"), text)


@SETTINGS
@given(st.text(min_size=1))
def test_the_csv_guard_is_undone_exactly_and_disarms_formulas(text: str) -> None:
    cell = guard(text)
    assert unguard(cell) == text
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


@SETTINGS
@given(st.lists(st.lists(st.none() | st.text(min_size=1), min_size=3, max_size=3), max_size=5))
def test_csv_rows_read_back_as_written(rows: list[list[str | None]]) -> None:
    columns = ("a", "b", "c")
    text = to_csv(columns, [dict(zip(columns, row, strict=True)) for row in rows])
    header, *read = list(csv.reader(io.StringIO(text, newline="")))
    assert header == list(columns)
    assert [[unguard(c) for c in row] for row in read] == rows


@SETTINGS
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.floats(min_value=0, max_value=30)),
        max_size=200,
    ),
    st.integers(min_value=1, max_value=5),
)
def test_the_refusal_budget_writes_within_its_bounds_and_counts_the_rest(
    attempts: list[tuple[str, float]], limit: int
) -> None:
    span = 10.0
    budget = RefusalBudget(span=span, limit=limit)
    clock, written, counted = 0.0, [], 0
    pending: dict[str, int] = {}
    for address, step in attempts:
        clock += step
        suppressed = budget.admit(address, clock)
        if suppressed is None:
            pending[address] = pending.get(address, 0) + 1
        else:
            assert suppressed == pending.pop(address, 0)  # each one not written, counted once
            written.append((address, clock))
            counted += 1 + suppressed
    assert counted + sum(pending.values()) == len(attempts)
    for address in {a for a, _ in written}:
        times = [t for a, t in written if a == address]
        assert all(b - a >= span for a, b in itertools.pairwise(times))
    # The windows tumble: any span of time overlaps two at most.
    starts = [t for _, t in written]
    assert all(len([t for t in starts if s <= t < s + span]) <= 2 * limit for s in starts)


def test_the_refusal_budget_admits_one_per_address_per_span() -> None:
    budget = RefusalBudget(span=60.0, limit=60)
    assert budget.admit("192.0.2.1", 0.0) == 0
    assert [budget.admit("192.0.2.1", t) for t in (1.0, 2.0, 59.0)] == [None, None, None]
    assert budget.admit("192.0.2.1", 60.0) == 3  # the three not written in between
    assert budget.admit("192.0.2.2", 60.5) == 0


def test_the_refusal_budget_caps_many_addresses() -> None:
    budget = RefusalBudget(span=60.0, limit=5)
    admitted = [budget.admit(f"192.0.2.{n}", float(n) / 10) for n in range(50)]
    assert sum(a is not None for a in admitted) == 5
    assert budget.admit("192.0.2.40", 61.0) == 1  # its refused one, counted


def test_any_number_of_fractional_digits_is_read() -> None:
    # Past Python's 4,300-digit limit on int(): still an instant, rounded up, never a 500.
    many = "2026-12-07T06:20:00." + "0" * 6 + "1" * 5_000 + "-05:00"
    assert normalise_instant(many) == "2026-12-07T11:20:00.000001Z"
