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
good round. What a heartbeat says, how two merge and a file's bytes are ``events/beats.py``.

On PostgreSQL, whose servers may run on several hosts (each with a home of its own), every
write also goes, merged the same way, to the loop's row of the ``loop_beats`` table
(``events/loop_beats.py``), in one short statement. The file stays: a loop failing because
the database cannot be reached is still seen on its host. A reader takes both
(``events.beats.combine``): any host then answers for every loop of the group, and for its own
when the database is away.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from eventsourcing.persistence import PersistenceError

from events.beats import Beat, MalformedBeat, decode_beat, encode_beat, merge
from events.db import Database
from events.loop_beats import record_shared

log = logging.getLogger(__name__)

STATUS_DIR = "status"
WRITE_AT_MOST_EVERY = 1.0  # seconds between one process's heartbeats of a loop that runs often
# Failures of the store itself (or of the disk under it): expected now and then, logged by type.
STORE_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error,
    psycopg.Error,
    PersistenceError,
    OSError,
)


def status_dir(home: Path) -> Path:
    return home / STATUS_DIR


def read_beat(home: Path, name: str) -> Beat | None:
    """The heartbeat of loop ``name`` (None if no process has written one)."""
    try:
        data = (status_dir(home) / f"{name}.json").read_bytes()
    except FileNotFoundError:
        return None
    return decode_beat(data)


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
