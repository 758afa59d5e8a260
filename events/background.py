"""Loops a server process runs in the background (signing the log, following the views), kept
alive through the store's bad moments and watched through a heartbeat file.

A round that fails (the store locked past its timeout, the database restarting, a full disk)
is logged by its exception's type only, since a message can quote a record; a failure that
is no store error (a bug) is logged with its traceback, still without the message. The loop
then waits longer (doubling, up to a bound) and tries again; only ``stop`` ends it.

Every server process runs the loops (the views' follower in one of them at a time), and
``chartledger status`` runs in none, so each loop's last good round is kept where all of them
can read it: ``status/<name>.json`` in the practice home (mode 0600, in a 0700 folder), a few
times and an exception's type, never PHI. Processes writing one file merge what they write
with what is there under an ``flock``, so a process that keeps failing cannot hide another's
good round.

On PostgreSQL, whose servers may run on several hosts (each with a home of its own), every
write also goes, merged the same way, to the loop's row of the ``loop_beats`` table
(``events/loop_beats.py``), in one short statement. The file stays: a loop failing because
the database cannot be reached is still seen on its host. A reader takes both (``combine``):
any host then answers for every loop of the group, and for its own when the database is away.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from events import loop_beats
from events.config import parse_database_url
from events.db import Database, settle

log = logging.getLogger(__name__)

STATUS_DIR = "status"
WRITE_AT_MOST_EVERY = 1.0  # seconds between one process's heartbeats of a loop that runs often
# Seconds a heartbeat's write or read waits for PostgreSQL (a connection, a lock, the statement)
# before giving up on the shared row: the file answers meanwhile.
SHARED_TIMEOUT = 2.0
# Failures of the store itself (or of the disk under it): expected now and then, logged by type.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error,
    psycopg.Error,
    PersistenceError,
    OSError,
)


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


def status_dir(home: Path) -> Path:
    return home / STATUS_DIR


def read_beat(home: Path, name: str) -> Beat | None:
    """The heartbeat of loop ``name`` (None if no process has written one)."""
    try:
        data = (status_dir(home) / f"{name}.json").read_bytes()
    except FileNotFoundError:
        return None
    return decode_beat(data)


def record_shared(db: Database, beat: Beat) -> None:
    """Merge ``beat`` into its loop's row of ``loop_beats`` (PostgreSQL only), naming this host
    and process as the last writer; raise if the database does not take it within
    ``SHARED_TIMEOUT`` seconds."""
    datastore = db.datastore
    assert isinstance(datastore, PostgresDatastore)
    with datastore.pool.connection(timeout=SHARED_TIMEOUT) as conn:
        settle(conn, datastore)
        with conn.transaction():
            conn.execute(_BRIEFLY)
            conn.execute(
                loop_beats.UPSERT,
                (
                    beat.name,
                    beat.cadence,
                    beat.late_after,
                    beat.started,
                    beat.last_ok,
                    beat.last_failure,
                    beat.failure,
                    socket.gethostname(),
                    os.getpid(),
                ),
            )


_BRIEFLY = (
    f"SET LOCAL lock_timeout = '{SHARED_TIMEOUT}s'; "
    f"SET LOCAL statement_timeout = '{SHARED_TIMEOUT}s'"
)


def read_shared(db: Database) -> dict[str, Beat]:
    """Every loop's row of ``loop_beats`` (none on SQLite); raises what the database raises
    (``STORE_ERRORS``) when it cannot be read within about ``SHARED_TIMEOUT`` seconds."""
    if db.dialect == "sqlite":
        return {}
    datastore = db.datastore
    assert isinstance(datastore, PostgresDatastore)
    with datastore.pool.connection(timeout=SHARED_TIMEOUT) as conn:
        settle(conn, datastore)
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(_BRIEFLY)
            return _beats(cursor.execute(loop_beats.SELECT).fetchall())


def read_shared_at(database_url: str | None) -> dict[str, Beat]:
    """As ``read_shared``, on a connection of its own to the store at ``database_url`` (for a
    command that opens no store); none without one (SQLite)."""
    if database_url is None:
        return {}
    pg = parse_database_url(database_url)
    timeout = max(1, round(SHARED_TIMEOUT))
    with psycopg.connect(pg.conninfo(), autocommit=True, connect_timeout=timeout) as conn:
        conn.execute(SQL("SET search_path TO {0}").format(Identifier(pg.schema)))
        conn.execute(_BRIEFLY.replace("SET LOCAL", "SET"))
        return _beats(conn.execute(loop_beats.SELECT).fetchall())


def _beats(rows: list[tuple[object, ...]]) -> dict[str, Beat]:
    def utc(moment: object) -> datetime | None:
        return moment.astimezone(UTC) if isinstance(moment, datetime) else None

    found = {}
    for name, cadence, late_after, started, last_ok, last_failure, failure in rows:
        found[str(name)] = Beat(
            name=str(name),
            cadence=float(cadence),  # type: ignore[arg-type]
            late_after=float(late_after),  # type: ignore[arg-type]
            started=utc(started),
            last_ok=utc(last_ok),
            last_failure=utc(last_failure),
            failure=None if failure is None else str(failure),
        )
    return found


class Heartbeat:
    """Where one loop of this process records its starts, good rounds and failures: its file
    in the home and, with a PostgreSQL ``db``, its row of ``loop_beats`` too."""

    def __init__(
        self, home: Path, name: str, cadence: float, late_after: float, db: Database | None = None
    ) -> None:
        self.home = home
        self.name = name
        self.cadence = cadence
        self.late_after = late_after
        self.db = db if db is not None and db.dialect == "postgres" else None
        self._written = float("-inf")  # monotonic time of this process's last good-round write
        self._failing = False
        self._unwritable = False
        self._unshared = False

    def started(self) -> None:
        self._write(started=_now())

    def ran(self) -> None:
        """A good round. A loop running many rounds a second writes about once a second."""
        if not self._failing and time.monotonic() - self._written < WRITE_AT_MOST_EVERY:
            return
        self._written = time.monotonic()
        self._failing = False
        self._write(last_ok=_now())

    def failed(self, error: BaseException) -> None:
        self._failing = True
        self._write(last_failure=_now(), failure=type(error).__name__)

    def _write(self, **change: object) -> None:
        beat = Beat(self.name, self.cadence, self.late_after, **change)  # type: ignore[arg-type]
        folder = status_dir(self.home)
        try:
            folder.mkdir(mode=0o700, exist_ok=True)
            with _locked(folder / ".lock"):
                path = folder / f"{self.name}.json"
                try:
                    old: Beat | None = decode_beat(path.read_bytes())
                except (FileNotFoundError, MalformedBeat):
                    old = None
                _replace(path, encode_beat(merge(old, beat)))
        except OSError as e:
            # The loop goes on (its work may still be done); status will show it late.
            if not self._unwritable:
                log.warning("%s: cannot write its heartbeat (%s)", self.name, type(e).__name__)
            self._unwritable = True
        else:
            self._unwritable = False
        if self.db is not None:
            self._share(beat)

    def _share(self, beat: Beat) -> None:
        assert self.db is not None
        try:
            record_shared(self.db, beat)
        except STORE_ERRORS as e:
            # The file above holds it; other hosts see this loop late until a write gets through.
            if not self._unshared:
                log.warning(
                    "%s: cannot share its heartbeat through the store (%s)",
                    self.name,
                    type(e).__name__,
                )
            self._unshared = True
        else:
            self._unshared = False


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # and with it the lock


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all (a reader never sees half a file)."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(part, path)


def wait_after(failures: int, every: float, longest: float) -> float:
    """Seconds to wait before the next round: ``every`` after a good round; after ``failures``
    failed rounds in a row, twice as long for each, but never past ``longest`` (and never
    less than ``every``)."""
    if failures <= 0:
        return every
    return max(every, min(every * 2.0 ** min(failures, 64), longest))


def _worth_logging(failures: int) -> bool:
    """The 1st, 2nd, 4th, 8th... failure in a row: a store away for an hour is a few lines."""
    return failures & (failures - 1) == 0


def keep_running(
    what: str,
    one_round: Callable[[], None],
    stop: threading.Event,
    every: float,
    longest_wait: float,
    heartbeat: Heartbeat | None = None,
    at_once: bool = False,
) -> None:
    """Run ``one_round`` every ``every`` seconds (the first at once, or after ``every``) until
    ``stop`` is set, surviving its failures."""
    if heartbeat is not None:
        heartbeat.started()
    failures = 0
    wait = 0.0 if at_once else every
    while not stop.wait(wait):
        wait = every
        try:
            one_round()
        except Exception as e:
            if stop.is_set():
                return  # the server is stopping and closed the store under the round
            failures += 1
            if heartbeat is not None:
                heartbeat.failed(e)
            wait = wait_after(failures, every, longest_wait)
            if _worth_logging(failures):
                _log_failure(what, e, failures, wait)
            continue
        if failures:
            log.warning("%s: working again after %d failed rounds", what, failures)
        failures = 0
        if heartbeat is not None:
            heartbeat.ran()


def _log_failure(what: str, error: Exception, failures: int, wait: float) -> None:
    kind = type(error).__name__
    if isinstance(error, STORE_ERRORS):
        log.warning(
            "%s failed (%s; %d in a row); trying again in %.1f s", what, kind, failures, wait
        )
        return
    # A bug: where it happened helps whoever fixes it; the message could quote a record.
    frames = "".join(traceback.format_tb(error.__traceback__))
    log.error(
        "%s failed with %s, not a store error (%d in a row); trying again in %.1f s\n%s",
        what,
        f"{type(error).__module__}.{error.__class__.__qualname__}",
        failures,
        wait,
        frames,
    )
