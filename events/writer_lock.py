"""One SQLite writer at a time, across the threads and processes of one machine, queued here.

SQLite lets one transaction write at a time; another writer that finds the lock taken is put
to sleep by SQLite's busy handler for 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, then 100 ms
before it looks again, however soon the lock is free. Two processes writing one store (the
server and a CLI command, or the two processes of a rebuild) then spend most of their time
asleep. Here writers wait on a lock file instead (``flock``), looked at every fraction of a
millisecond, so the next writer starts almost as soon as the last one commits.

This only orders writers; SQLite's own locking still decides. A writer that cannot get the lock
file in ``WAIT_AT_MOST`` seconds (say, a lock file on a file system without ``flock``) goes on
to SQLite's lock as before.

Since the lock lets one thread of this process write at a time, the process writes through one
connection kept for it (``connection``) rather than taking one from eventsourcing's pool and
putting it back around every transaction: that pool's locks and bookkeeping cost an append of
one event about a tenth of its time.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eventsourcing.sqlite import SQLiteConnection

from events.per_store import PerDatastore
from events.private_files import open_private_fd

WAIT_AT_MOST = 5.0
_FIRST_NAP, _LONGEST_NAP = 0.0001, 0.001


class WriterLock:
    def __init__(self, path: str | None, pool: Any = None) -> None:
        self._path = path  # None: no lock file (an in-memory database)
        self._pool = pool
        self._threads = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._holds_file = False
        self._kept: SQLiteConnection | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._depth == 0:
                self._holds_file = self._take_file()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._holds_file:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)  # type: ignore[arg-type]
                    self._holds_file = False

    def connection(self) -> SQLiteConnection | None:
        """The connection to write through, to be used only while the lock is ``held``.

        Taken from the pool once and never put back, so the pool still closes it when the
        store is closed. None for an in-memory database: its writers share the pool's
        connections, which hold the one database.
        """
        if self._path is None or self._pool is None:
            return None
        kept = self._kept
        if kept is None or kept.closed:
            kept = self._kept = self._pool.get_connection()
        return kept

    def drop_connection(self) -> None:
        """Forget the kept connection (after it failed): the next write takes a fresh one."""
        kept, self._kept = self._kept, None
        if kept is not None:
            try:
                self._pool.put_connection(kept)
            except Exception:  # the pool is closed, or the connection is: nothing to give back
                kept.close()

    def _take_file(self) -> bool:
        if self._path is None:
            return False
        try:
            if self._fd is None:
                self._fd = open_private_fd(Path(self._path), os.O_RDWR | os.O_CLOEXEC)
            give_up, nap = time.monotonic() + WAIT_AT_MOST, _FIRST_NAP
            while True:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    if time.monotonic() > give_up:
                        return False
                    time.sleep(nap)
                    nap = min(nap * 2, _LONGEST_NAP)
        except OSError:  # no lock file here: SQLite's lock alone, as before
            return False


# The writer lock of an eventsourcing SQLite datastore (one per datastore object).
writer_lock: PerDatastore[WriterLock] = PerDatastore(
    lambda datastore: WriterLock(_lock_path(datastore.pool), datastore.pool)
)


def _lock_path(pool: Any) -> str | None:
    if pool.is_sqlite_memory_mode:
        return None
    name = str(pool.db_name)
    if name.startswith("file:"):
        name = name.removeprefix("file:").split("?", 1)[0]
    return name + "-writer"
