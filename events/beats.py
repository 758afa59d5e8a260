"""What a background loop's heartbeat says (``Beat``), how two heartbeats of one loop merge, and
the bytes of a heartbeat file (``events/background.py`` writes them; ``events/loop_beats.py``
keeps the same beats in a table of a PostgreSQL store). Times and an exception's type, never
PHI."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime


@dataclass(frozen=True)
class Beat:
    """What a heartbeat file says of one loop. Times are UTC; ``failure`` is the type of the
    last failure's exception, never its message."""

    name: str
    cadence: float  # seconds between rounds
    late_after: float  # seconds without a good round (or a start) after which it is late
    started: datetime | None = None  # a process last started the loop
    last_ok: datetime | None = None  # a round last succeeded
    last_failure: datetime | None = None
    failure: str | None = None

    def last_alive(self) -> datetime | None:
        """The later of the last good round and the last start: a loop just started has had
        no round yet, and is not late until it has missed one."""
        times = [t for t in (self.started, self.last_ok) if t is not None]
        return max(times, default=None)

    def late(self, now: datetime) -> bool:
        alive = self.last_alive()
        return alive is None or (now - alive).total_seconds() > self.late_after


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return a if b is None or (a is not None and a >= b) else b


def merge(old: Beat | None, new: Beat) -> Beat:
    """What a file holds after ``new`` is written over ``old``: each time the later of the two
    (so no writer moves one back), the failure named with the later failure, and the cadence
    of the newest writer."""
    if old is None:
        return new
    failure = (
        new.failure
        if _later(new.last_failure, old.last_failure) == new.last_failure
        else old.failure
    )
    return replace(
        new,
        started=_later(new.started, old.started),
        last_ok=_later(new.last_ok, old.last_ok),
        last_failure=_later(new.last_failure, old.last_failure),
        failure=failure,
    )


def newest(beat: Beat) -> datetime | None:
    """The latest time a beat holds: when whoever wrote it last wrote."""
    times = [t for t in (beat.started, beat.last_ok, beat.last_failure) if t is not None]
    return max(times, default=None)


def combine(local: Beat | None, shared: Beat | None) -> Beat | None:
    """What a reader reports of one loop from this host's file and the group's row: ``merge``
    of the two, with the cadence of the one written last (the file's on a tie). So each time
    is the later of the two, and a loop alive by both is alive (with one cadence on every
    host, late only when both say so)."""
    if local is None or shared is None:
        return local if shared is None else shared
    local_at, shared_at = newest(local), newest(shared)
    if shared_at is not None and (local_at is None or shared_at > local_at):
        return merge(local, shared)
    return merge(shared, local)


_FIELDS = {"name", "cadence", "late_after", "started", "last_ok", "last_failure", "failure"}
_TIMES = ("started", "last_ok", "last_failure")


def encode_beat(beat: Beat) -> bytes:
    """A heartbeat file's bytes: one JSON object; times as RFC 3339 in UTC."""
    raw: dict[str, object] = {
        "name": beat.name,
        "cadence": beat.cadence,
        "late_after": beat.late_after,
        "failure": beat.failure,
    }
    for field in _TIMES:
        moment = getattr(beat, field)
        raw[field] = None if moment is None else moment.astimezone(UTC).isoformat()
    return json.dumps(raw, sort_keys=True).encode() + b"\n"


class MalformedBeat(ValueError):
    """A heartbeat file that is not one this module wrote."""


def decode_beat(data: bytes) -> Beat:
    """The ``Beat`` in a heartbeat file's bytes, or ``MalformedBeat`` saying what is wrong."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested past the stack
        raise MalformedBeat("malformed heartbeat: not JSON") from None
    if not isinstance(raw, dict) or set(raw) != _FIELDS:
        raise MalformedBeat("malformed heartbeat: not the expected fields")
    if not isinstance(raw["name"], str) or not (
        raw["failure"] is None or isinstance(raw["failure"], str)
    ):
        raise MalformedBeat("malformed heartbeat: name and failure must be text")
    seconds = {}
    for field in ("cadence", "late_after"):
        value = raw[field]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1e9:
            raise MalformedBeat(f"malformed heartbeat: {field} must be a positive number")
        seconds[field] = float(value)
    times = {}
    for field in _TIMES:
        value = raw[field]
        if value is None:
            times[field] = None
            continue
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
            if moment is None or moment.utcoffset() is None:
                raise ValueError("no time with its offset")
            times[field] = moment.astimezone(UTC)
        except (ValueError, OverflowError):  # not a time, or one past year 1 or 9999 in UTC
            message = f"malformed heartbeat: {field} must be a time with its offset"
            raise MalformedBeat(message) from None
    return Beat(name=raw["name"], failure=raw["failure"], **seconds, **times)
