"""The witness's memory: the latest checkpoint it cosigned for each origin (SQLite).

Checking a request's old size against the stored size and storing the new checkpoint happen in
one write transaction (BEGIN IMMEDIATE), as tlog-witness requires: otherwise two requests could
each pass the check and the smaller one be stored last, rolling the witness back.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple, TypeVar

from events.private_files import touch_private

T = TypeVar("T")


class Latest(NamedTuple):
    size: int
    root: bytes | None  # None before the first checkpoint of a log
    note: bytes | None


class Advance(NamedTuple):
    """What ``WitnessState.advance`` stores as a log's latest checkpoint."""

    size: int
    root: bytes
    note: bytes


class WitnessState:
    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        touch_private(path)  # sqlite3 would make it 0644 less the umask; -wal/-shm follow it
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS latest (origin TEXT PRIMARY KEY, size INTEGER NOT NULL, "
            "root BLOB NOT NULL, note BLOB NOT NULL)"
        )
        # What a log signed and the witness refused: evidence of a fork or a rollback.
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS refused (origin TEXT NOT NULL, reason TEXT NOT NULL, "
            "request BLOB NOT NULL, at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def latest(self, origin: str) -> Latest:
        with self._lock:
            row = self._conn.execute(
                "SELECT size, root, note FROM latest WHERE origin = ?", (origin,)
            ).fetchone()
        return Latest(0, None, None) if row is None else Latest(row[0], row[1], row[2])

    def advance(self, origin: str, decide: Callable[[Latest], Advance | T]) -> T | None:
        """Under the write lock: ``decide`` sees the latest state and returns either an
        ``Advance`` to store (and None is returned), or a refusal, which is returned as it is."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT size, root, note FROM latest WHERE origin = ?", (origin,)
            ).fetchone()
            latest = Latest(0, None, None) if row is None else Latest(row[0], row[1], row[2])
            outcome = decide(latest)
            if isinstance(outcome, Advance):
                size, root, note = outcome
                conn.execute(
                    "INSERT INTO latest (origin, size, root, note) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, "
                    "root = excluded.root, note = excluded.note",
                    (origin, size, root, note),
                )
                return None
            return outcome

    def refused(self, origin: str, reason: str, request: bytes) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO refused (origin, reason, request) VALUES (?, ?, ?)",
                (origin, reason, request),
            )

    def refusals(self, origin: str) -> list[tuple[str, bytes]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT reason, request FROM refused WHERE origin = ? ORDER BY rowid", (origin,)
            ).fetchall()
        return [(reason, bytes(request)) for reason, request in rows]

    def close(self) -> None:
        self._conn.close()
