"""Long work run in the server after its request is answered (docs/JOBS.md).

``Jobs.start`` records the job's start in the ledger (``Job.Started``, in the request, so a
keyed request's retry gets the same job), adds its row and hands the work to a small pool of
threads of this process; further jobs wait their turn (``queued``). The work reports progress
through ``JobProgress.update``, which also stores it (at most a few times a second) for every
server process to read, and stops the work with ``JobCancelled`` once a cancel was asked for or
the server is stopping. Its end is recorded as ``Job.Finished``.

A heartbeat keeps the rows of this process's unfinished jobs fresh; a job whose heartbeat went
stale, or whose process on this host is gone, is marked failed (``job-interrupted``) by whoever
reads it next. The work itself writes its files under a temporary name and renames them only
once complete, so a failed, cancelled or interrupted job leaves nothing that looks finished.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from api.jobs.problems import CANCELLED, INTERRUPTED, problem_of
from api.jobs.rows import JobRows, now_ms
from api.jobs.view import JobView
from domain.base import user_subject
from domain.jobs import Job
from events.context import acting
from events.db import Cursor
from events.ledger import Ledger

log = logging.getLogger("chartledger.jobs")

THREADS = 2  # jobs running at once in one server process; the 2-core target machine
HEARTBEAT_EVERY = 5.0  # seconds
STALE_AFTER = 30.0  # seconds without a heartbeat: the job's process is taken as gone
STORE_EVERY = 0.5  # seconds between two stored progress updates of one job
KEEP_FINISHED = 30 * 24 * 3600.0  # seconds a finished job's row is kept (docs/JOBS.md §5)
LIST_LIMIT = 100

Work = Callable[["JobProgress"], dict[str, Any]]


class _EndedAlready(Exception):
    """The job's row was ended by someone else first: this end is not recorded."""


class JobCancelled(Exception):
    """Raised by ``JobProgress.update`` once the job is to stop: cancelled, or the server is
    stopping (``interrupted``)."""

    def __init__(self, interrupted: bool = False) -> None:
        super().__init__("interrupted" if interrupted else "cancelled")
        self.interrupted = interrupted


class JobProgress:
    """The running work's view of its job: ``update`` as it goes (a progress point)."""

    def __init__(self, jobs: Jobs, job_id: UUID) -> None:
        self._jobs = jobs
        self.job_id = job_id
        self._stored = 0.0
        self._stage = ""
        self.done, self.total, self.stage = 0, None, ""

    def update(self, done: int, total: int | None = None, stage: str = "") -> None:
        self.done, self.total, self.stage = done, total, stage or self.stage
        self.check()
        moment = time.monotonic()
        if self.stage == self._stage and moment - self._stored < STORE_EVERY:
            return
        self._stored, self._stage = moment, self.stage
        if self._jobs.rows.progress(self.job_id, done, total, self.stage):
            raise JobCancelled()

    def check(self) -> None:
        """Raise ``JobCancelled`` if this process knows the job is to stop."""
        if self._jobs.stopping.is_set():
            raise JobCancelled(interrupted=True)
        if self.job_id in self._jobs.cancelled:
            raise JobCancelled()

    def reporter(self, stage: str) -> Callable[[int, int], None]:
        """A ``(done, total)`` progress callback (as ``legal_hold``, ``projections`` and
        ``events`` take them) reporting under ``stage``."""
        return lambda done, total: self.update(done, total, stage)


class Jobs:
    def __init__(self, ledger: Ledger, threads: int = THREADS) -> None:
        self.ledger = ledger
        self.rows = JobRows(ledger.db, ledger.master_key)
        self.host = _this_host()
        self.worker = f"{self.host}:{os.getpid()}"
        self.stopping = threading.Event()
        self.cancelled: set[UUID] = set()
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._beating: threading.Thread | None = None
        self._lock = threading.Lock()
        self._mine: set[UUID] = set()  # jobs this process started and has not ended
        self._swept = 0.0

    # -- starting and running -----------------------------------------------------------------

    def start(self, kind: str, user_id: UUID, work: Work, *, session: str = "api") -> JobView:
        """Record the job, queue ``work`` and return at once with the queued job."""
        job_id = uuid4()
        started = now_ms()
        at = datetime.fromtimestamp(started / 1000, UTC)
        job = Job.begin(job_id=job_id, kind=kind, started_by=user_id, started_at=at)

        def add_row(cursor: Cursor, _appended: list[int]) -> None:
            self.rows.insert(cursor, job_id, kind, user_id, self.worker, started)

        with acting(user_subject(user_id), session):
            self.ledger.save(job, after_append=add_row)
        self._mine.add(job_id)
        self._sweep_if_due()
        self._pool_started().submit(self._run, job_id, user_id, session, work)
        view = self.rows.get(job_id)
        assert view is not None
        return view

    def _pool_started(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="job")
                self._beating = threading.Thread(target=self._beat, name="jobs-heartbeat")
                self._beating.daemon = True
                self._beating.start()
            return self._pool

    def _run(self, job_id: UUID, user_id: UUID, session: str, work: Work) -> None:
        try:
            if self.stopping.is_set() or not self.rows.claim(job_id):
                return  # cancelled while queued (or the server stopping: interrupted below)
            progress = JobProgress(self, job_id)
            with acting(user_subject(user_id), session):
                result = work(progress)
            self._end(job_id, "succeeded", result=result)
        except JobCancelled as e:
            if e.interrupted:
                self._end(job_id, "failed", error=dict(INTERRUPTED))
            else:
                self._end(job_id, "cancelled", error=dict(CANCELLED))
        except BaseException as e:  # the job fails; the server goes on
            self._end(job_id, "failed", error=problem_of(e))
        finally:
            self.cancelled.discard(job_id)
            self._mine.discard(job_id)

    def _end(
        self,
        job_id: UUID,
        state: str,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Record the end (retried a few times while the store is away)."""
        for wait in (0.5, 1.0, 2.0, 4.0, None):
            try:
                self._record_end(job_id, state, result, error)
                return
            except Exception as e:
                if wait is None:
                    log.error("job end not recorded: %s", type(e).__name__)
                    return
                time.sleep(wait)

    def _record_end(
        self,
        job_id: UUID,
        state: str,
        result: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> None:
        """``Job.Finished`` and the row's end in one transaction, so whoever sees the end sees
        it recorded; only the first of two processes ending a job (its own, and one that found
        it interrupted) ends it, the other's append is rolled back."""
        try:
            job = self.ledger.repository.get(job_id)
        except AggregateNotFoundError:  # a row without its events: the row alone
            with self.ledger.db.write(lock=False) as c:
                self.rows.finish(c, job_id, state, result, error)
            return
        assert isinstance(job, Job)
        if job.outcome is not None:
            return
        problem_type = None if error is None else str(error.get("type"))
        job.end(state, datetime.now(UTC), problem_type)

        def end_row(cursor: Cursor, _appended: list[int]) -> None:
            if not self.rows.finish(cursor, job_id, state, result, error):
                raise _EndedAlready()

        try:
            with acting(user_subject(job.started_by), "jobs"):
                self.ledger.save(job, after_append=end_row)
        except (_EndedAlready, IntegrityError):
            return

    def _beat(self) -> None:
        while not self.stopping.wait(HEARTBEAT_EVERY):
            try:
                self.rows.beat(self.worker)
            except Exception as e:  # the store away: the next beat tries again
                log.warning("jobs heartbeat missed: %s", type(e).__name__)

    # -- reading and cancelling ---------------------------------------------------------------

    def get(self, job_id: UUID) -> JobView | None:
        self.interrupt_lost()
        return self.rows.get(job_id)

    def listed(self, user_id: UUID | None, limit: int = LIST_LIMIT) -> list[JobView]:
        self.interrupt_lost()
        return self.rows.listed(user_id, limit)

    def cancel(self, job_id: UUID) -> JobView | None:
        """Cancel a queued job at once, a running one at its next progress point."""
        self.cancelled.add(job_id)  # this process's own, if it runs here
        self.rows.ask_cancel(job_id)
        job = self.rows.get(job_id)
        if job is not None and job.state == "queued":
            # Ended here; if its thread claims it meanwhile, it stops at its first progress
            # point, and only one of the two ends is recorded.
            self._end(job_id, "cancelled", error=dict(CANCELLED))
        return self.rows.get(job_id)

    def interrupt_lost(self) -> None:
        """Mark failed every unfinished job whose process is gone, and forget old rows."""
        stale_before = now_ms() - int(STALE_AFTER * 1000)
        for job_id in self.rows.lost(stale_before, self.host):
            self._end(job_id, "failed", error=dict(INTERRUPTED))

    def _sweep_if_due(self) -> None:
        """Delete rows finished long ago, at most once an hour in this process."""
        moment = time.monotonic()
        if self._swept and moment - self._swept < 3600:
            return
        self._swept = moment
        self.rows.sweep(now_ms() - int(KEEP_FINISHED * 1000))

    def close(self) -> None:
        """Stop: running work ends at its next progress point (failed, interrupted), queued
        work never starts; waits for the threads."""
        self.stopping.set()
        with self._lock:
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for job_id in list(self._mine):  # queued here, never started
            self._end(job_id, "failed", error=dict(INTERRUPTED))


def _this_host() -> str:
    """This machine and process namespace: a process id is checked for life only where it
    means the same process (two containers may share a host name, never a PID namespace)."""
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    return f"{socket.gethostname()}/{namespace}"
