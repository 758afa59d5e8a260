"""The background loops' heartbeats and waits (events/beats.py, events/background.py): a
heartbeat file reads back as written, anything else is refused as malformed (never another
error), merging never moves a time back, a host's file combined with the group's row
(PostgreSQL) keeps the later of each time and is alive when both are, and the wait after
failures grows but stays within its bounds."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from events.background import wait_after
from events.beats import (
    Beat,
    MalformedBeat,
    combine,
    decode_beat,
    encode_beat,
    merge,
    newest,
)

SETTINGS = settings(max_examples=200, deadline=None)

offsets = st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=offsets
)
maybe_moments = st.none() | moments
seconds = st.floats(min_value=1e-3, max_value=1e8, allow_nan=False, allow_infinity=False)
beats = st.builds(
    Beat,
    name=st.text(max_size=40),
    cadence=seconds,
    late_after=seconds,
    started=maybe_moments,
    last_ok=maybe_moments,
    last_failure=maybe_moments,
    failure=st.none() | st.text(max_size=40),
)


def latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


@SETTINGS
@given(beats)
def test_a_heartbeat_reads_back_as_written(beat: Beat) -> None:
    read = decode_beat(encode_beat(beat))
    assert read == beat  # times compare as instants
    assert all(t is None or t.tzinfo is UTC for t in (read.started, read.last_ok))
    assert encode_beat(read) == encode_beat(beat)  # and in UTC, one encoding per beat


@SETTINGS
@given(st.binary(max_size=300))
def test_any_bytes_are_a_heartbeat_or_refused_as_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedBeat):  # and nothing else
        decode_beat(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=20,
)


@SETTINGS
@given(beats, st.sampled_from(["name", "cadence", "late_after", "started", "failure"]), json_values)
def test_a_heartbeat_with_a_field_changed_to_anything_is_read_or_refused(
    beat: Beat, field: str, value: object
) -> None:
    raw = json.loads(encode_beat(beat))
    raw[field] = value
    try:
        read = decode_beat(json.dumps(raw).encode())
    except MalformedBeat:
        return
    assert read.name == raw["name"] and read.cadence == raw["cadence"] > 0


@SETTINGS
@given(st.integers(1, 100_000))
def test_deeply_nested_json_is_refused_as_malformed(depth: int) -> None:
    try:
        decode_beat(b"[" * depth + b"]" * depth)
    except MalformedBeat:
        return
    raise AssertionError("a list read as a heartbeat")


@SETTINGS
@given(st.none() | beats, beats)
def test_merging_keeps_the_latest_of_each_time_and_the_newest_cadence(
    old: Beat | None, new: Beat
) -> None:
    merged = merge(old, new)
    if old is None:
        assert merged == new
        return
    assert merged.started == latest(old.started, new.started)
    assert merged.last_ok == latest(old.last_ok, new.last_ok)
    assert merged.last_failure == latest(old.last_failure, new.last_failure)
    assert (merged.name, merged.cadence, merged.late_after) == (
        new.name,
        new.cadence,
        new.late_after,
    )
    later = new if merged.last_failure == new.last_failure else old
    assert merged.failure == later.failure
    assert merge(merged, new) == merged  # writing the same again changes nothing


@SETTINGS
@given(beats, moments)
def test_a_loop_is_late_exactly_when_it_was_last_alive_longer_ago_than_late_after(
    beat: Beat, now: datetime
) -> None:
    alive = latest(beat.started, beat.last_ok)
    expected = alive is None or (now - alive) > timedelta(seconds=beat.late_after)
    assert beat.late(now) == expected


@SETTINGS
@given(st.integers(0, 10_000), seconds, st.floats(min_value=0, max_value=1e9))
def test_the_wait_grows_with_failures_within_its_bounds(
    failures: int, every: float, longest: float
) -> None:
    wait = wait_after(failures, every, longest)
    assert every <= wait <= max(every, longest)
    assert wait_after(failures + 1, every, longest) >= wait
    if failures == 0:
        assert wait == every
    if failures == 1 and longest >= 2 * every:
        assert wait == 2 * every  # the first retry comes after twice the cadence


@SETTINGS
@given(st.none() | beats, st.none() | beats)
def test_a_file_and_the_group_s_row_combine_into_the_later_of_each_time(
    local: Beat | None, shared: Beat | None
) -> None:
    both = combine(local, shared)
    if local is None or shared is None:
        assert both == (local if shared is None else shared)
        return
    assert both is not None
    for field in ("started", "last_ok", "last_failure"):
        assert getattr(both, field) == latest(getattr(local, field), getattr(shared, field))
    # The failure is named with the later failure; the cadence is the last writer's.
    if both.last_failure is not None:
        named = [b.failure for b in (local, shared) if b.last_failure == both.last_failure]
        assert both.failure in named
    last_writer = (
        shared
        if newest(shared) is not None
        and (
            newest(local) is None or newest(shared) > newest(local)  # type: ignore[operator]
        )
        else local
    )
    assert (both.cadence, both.late_after) == (last_writer.cadence, last_writer.late_after)
    # Combining again changes nothing, whichever side it comes from.
    assert combine(both, shared) == both and combine(local, both).last_ok == both.last_ok


@SETTINGS
@given(beats, beats, moments)
def test_a_loop_is_late_only_when_neither_the_file_nor_the_row_shows_it_alive(
    local: Beat, shared: Beat, now: datetime
) -> None:
    both = combine(local, shared)
    assert both is not None
    last_alive = latest(local.last_alive(), shared.last_alive())
    assert both.last_alive() == last_alive
    # Alive by either one within its own lateness is alive, with the later writer's bound.
    assert both.late(now) == (
        last_alive is None or (now - last_alive).total_seconds() > both.late_after
    )
    if not local.late(now) and not shared.late(now):
        assert not both.late(now)
