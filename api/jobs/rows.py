"""The rows of the ``jobs`` table (``events/job_rows.py``) as the jobs runner reads and moves them.

Every server process reads and writes the same rows, so a job started by one worker is answered
for by any: its state and progress, a cancel request (a flag the running process reads at its
next progress point), and a heartbeat that tells a live job from one whose process died.
``result`` and ``error`` are sealed (AES-GCM under a key derived from the master key, the job's
id as associated data): an import's report names what it rejected, and rows are not the
ledger's sealed payloads.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from api.jobs.view import UNFINISHED, JobView
from events.db import Cursor, Database
from events.job_rows import TABLE
from events.keys import aead_open, aead_seal

NONCE = 12
COLUMNS = "job_id, kind, user_id, state, done, total, stage, result, error, started, finished"
OPEN = "('queued', 'running')"


def now_ms() -> int:
    return int(time.time() * 1000)


def _instant(ms: int | None) -> datetime | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)


class JobRows:
    def __init__(self, db: Database, master_key: bytes) -> None:
        self.db = db
        self._key = hmac.new(master_key, b"chartledger job rows", hashlib.sha256).digest()

    @staticmethod
    def insert(
        c: Cursor, job_id: UUID, kind: str, user_id: UUID, worker: str, started: int
    ) -> None:
        """The new job's row, in the transaction that appends its ``Job.Started``."""
        c.execute(
            f"INSERT INTO {TABLE} (job_id, kind, user_id, state, done, total, stage, "
            "started, heartbeat, worker, cancel) VALUES (?, ?, ?, 'queued', 0, NULL, '', "
            "?, ?, ?, 0)",
            (str(job_id), kind, str(user_id), started, started, worker),
        )

    def get(self, job_id: UUID) -> JobView | None:
        rows = self.db.query(f"SELECT {COLUMNS} FROM {TABLE} WHERE job_id = ?", (str(job_id),))
        return self._view(rows[0]) if rows else None

    def listed(self, user_id: UUID | None, limit: int) -> list[JobView]:
        """The newest ``limit`` jobs, of ``user_id`` only unless None."""
        where, params = ("WHERE user_id = ? ", (str(user_id),)) if user_id else ("", ())
        rows = self.db.query(
            f"SELECT {COLUMNS} FROM {TABLE} {where}ORDER BY started DESC, job_id LIMIT {limit:d}",
            params,
        )
        return [self._view(row) for row in rows]

    def claim(self, job_id: UUID) -> bool:
        """Queued -> running; False if it is no longer queued or a cancel was asked for."""
        with self.db.write(lock=False) as c:
            c.execute(
                f"UPDATE {TABLE} SET state = 'running', heartbeat = ? "
                "WHERE job_id = ? AND state = 'queued' AND cancel = 0 RETURNING job_id",
                (now_ms(), str(job_id)),
            )
            return c.fetchone() is not None

    def progress(self, job_id: UUID, done: int, total: int | None, stage: str) -> bool:
        """Store the progress; True if a cancel was asked for."""
        with self.db.write(lock=False) as c:
            c.execute(
                f"UPDATE {TABLE} SET done = ?, total = ?, stage = ?, heartbeat = ? "
                "WHERE job_id = ? RETURNING cancel",
                (done, total, stage, now_ms(), str(job_id)),
            )
            row = c.fetchone()
        return row is not None and bool(row[0])

    def finish(
        self,
        c: Cursor,
        job_id: UUID,
        state: str,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Move an unfinished job to ``state`` (in the transaction that appends its
        ``Job.Finished``); False if it had finished already (another process found it
        interrupted first, say, or it was cancelled while queued)."""
        c.execute(
            f"UPDATE {TABLE} SET state = ?, result = ?, error = ?, finished = ? "
            f"WHERE job_id = ? AND state IN {OPEN} RETURNING job_id",
            (state, self._seal(job_id, result), self._seal(job_id, error), now_ms(),
             str(job_id)),
        )  # fmt: skip
        return c.fetchone() is not None

    def ask_cancel(self, job_id: UUID) -> None:
        """Flag a running job: its process stops it at its next progress point."""
        with self.db.write(lock=False) as c:
            c.execute(
                f"UPDATE {TABLE} SET cancel = 1 WHERE job_id = ? AND state IN {OPEN}",
                (str(job_id),),
            )

    def beat(self, worker: str) -> None:
        """Every unfinished job of this process is still alive."""
        with self.db.write(lock=False) as c:
            c.execute(
                f"UPDATE {TABLE} SET heartbeat = ? WHERE worker = ? AND state IN {OPEN}",
                (now_ms(), worker),
            )

    def lost(self, stale_before: int, host: str) -> list[UUID]:
        """Unfinished jobs whose process stopped: no heartbeat since ``stale_before``, or run
        by a process of this host that no longer exists."""
        rows = self.db.query(f"SELECT job_id, heartbeat, worker FROM {TABLE} WHERE state IN {OPEN}")
        return [UUID(j) for j, beat, worker in rows if beat < stale_before or _dead(worker, host)]

    def sweep(self, finished_before: int) -> None:
        with self.db.write(lock=False) as c:
            c.execute(
                f"DELETE FROM {TABLE} WHERE finished IS NOT NULL AND finished < ?",
                (finished_before,),
            )

    def _view(self, row: tuple[Any, ...]) -> JobView:
        job_id, kind, user_id, state, done, total, stage, result, error, started, finished = row
        job = UUID(job_id)
        return JobView(
            job_id=job,
            kind=kind,
            state=state,
            done=int(done),
            total=None if total is None else int(total),
            stage=stage,
            result=self._open(job, result),
            error=self._open(job, error),
            user_id=UUID(user_id),
            started_at=_instant(int(started)),  # type: ignore[arg-type]
            finished_at=_instant(None if finished is None else int(finished)),
        )

    def _seal(self, job_id: UUID, value: dict[str, Any] | None) -> bytes | None:
        if value is None:
            return None
        nonce = os.urandom(NONCE)
        plain = json.dumps(value, separators=(",", ":")).encode()
        return nonce + aead_seal(self._key, nonce, plain, str(job_id).encode())

    def _open(self, job_id: UUID, sealed: Any) -> dict[str, Any] | None:
        if sealed is None:
            return None
        raw = bytes(sealed)
        plain = aead_open(self._key, raw[:NONCE], raw[NONCE:], str(job_id).encode())
        if plain is None:  # altered in the database: say so rather than show it
            return {"altered": True}
        value: dict[str, Any] = json.loads(plain)
        return value


def _dead(worker: str, host: str) -> bool:
    """Whether ``worker`` ("<host>/<pid namespace>:<pid>") is a process of this host (and
    namespace) that has ended."""
    where, _, pid = worker.rpartition(":")
    if where != host or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


__all__ = ["UNFINISHED", "JobRows", "now_ms"]
