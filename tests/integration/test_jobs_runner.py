"""The jobs runner (api/jobs/) on both stores, with real work functions and no server: a job's
row moves queued -> running -> an end any process can read; progress is stored; cancel stops
queued work at once and running work at its next progress point; a failure is the problem the
request would have answered; a job whose process is gone (stale heartbeat, or a dead process
of this host) is failed as interrupted; stopping the runner interrupts what runs. Every start
and end is a ledger event, and nothing a failed or cancelled job wrote is left."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from api.jobs import JobProgress, Jobs, JobView
from api.jobs.rows import now_ms
from events.job_rows import TABLE
from events.ledger import Ledger
from projections.runner import read_entries

USER = uuid4()


@pytest.fixture
def jobs(ledger: Ledger) -> Iterator[Jobs]:
    runner = Jobs(ledger, threads=1)
    yield runner
    runner.close()


def ended(jobs: Jobs, job_id: UUID, timeout: float = 30.0) -> JobView:
    deadline = time.monotonic() + timeout
    while True:
        job = jobs.get(job_id)
        assert job is not None
        if job.finished:
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.01)


def job_events(ledger: Ledger, job_id: UUID) -> list[tuple[str, dict[str, Any]]]:
    return [
        (e.header.type.rpartition(":")[2], vars(e.event))
        for e in read_entries(ledger, 0, limit=100_000)
        if e.event is not None and e.header.stream == str(job_id)
    ]


def test_a_job_runs_reports_progress_and_its_start_and_end_are_ledger_events(
    jobs: Jobs, ledger: Ledger
) -> None:
    seen: list[tuple[int, int | None, str]] = []
    go = threading.Event()

    def work(progress: JobProgress) -> dict[str, Any]:
        for done in range(1, 4):
            progress.update(done, 3, f"step {done}")  # a new stage is stored at once
            view = jobs.get(progress.job_id)
            assert view is not None
            seen.append((view.done, view.total, view.stage))
        go.wait(10)
        return {"answer": 42}

    started = jobs.start("production", USER, work, session="test")
    assert started.state in ("queued", "running") and started.user_id == USER
    assert started.result is None and started.finished_at is None
    go.set()
    job = ended(jobs, started.job_id)
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]
    assert (job.state, job.result, job.error) == ("succeeded", {"answer": 42}, None)
    assert job.finished_at is not None and job.finished_at >= job.started_at
    events = job_events(ledger, started.job_id)
    assert [name for name, _ in events] == ["Job.Started", "Job.Finished"]
    assert events[0][1]["kind"] == "production" and events[1][1]["outcome"] == "succeeded"
    # Another process's runner reads the same row.
    other = Jobs(ledger)
    assert other.get(started.job_id) == job
    assert [j.job_id for j in other.listed(USER)] == [started.job_id]
    assert other.listed(uuid4()) == []


def test_a_failure_is_the_problem_the_request_would_have_had(jobs: Jobs, ledger: Ledger) -> None:
    def full_disk(progress: JobProgress) -> dict[str, Any]:
        progress.update(1, 2, "writing")
        raise OSError(errno.ENOSPC, "No space left on device")

    job = ended(jobs, jobs.start("export", USER, full_disk).job_id)
    assert job.state == "failed" and job.error is not None and job.result is None
    assert (job.error["status"], job.error["type"]) == (503, "urn:chartledger:problem:storage-full")

    def broken(progress: JobProgress) -> dict[str, Any]:
        raise RuntimeError("a bug, naming /some/path and a patient")

    job = ended(jobs, jobs.start("export", USER, broken).job_id)
    assert job.error == {
        "type": "urn:chartledger:problem:internal",
        "title": "Internal server error",
        "status": 500,
    }  # the exception's words (which could name anything) are not shown
    _, end = job_events(ledger, job.job_id)
    assert end[1]["problem_type"] == "urn:chartledger:problem:internal"


def test_cancel_stops_queued_work_at_once_and_running_work_at_its_next_progress_point(
    jobs: Jobs, ledger: Ledger, tmp_path: Path
) -> None:
    running = threading.Event()
    partial = tmp_path / "bundle.partial"

    def long(progress: JobProgress) -> dict[str, Any]:
        partial.write_bytes(b"half")
        try:
            running.set()
            for done in range(10_000):
                progress.update(done, 10_000, "writing")
                time.sleep(0.01)
        finally:
            partial.unlink()  # as the real work does: nothing half-written stays
        return {}

    ran_second = threading.Event()

    def second(progress: JobProgress) -> dict[str, Any]:
        ran_second.set()
        return {}

    first = jobs.start("production", USER, long)
    assert running.wait(10)
    queued = jobs.start("export", USER, second)  # one thread: it waits its turn
    assert queued.state == "queued"
    cancelled = jobs.cancel(queued.job_id)
    assert cancelled is not None and cancelled.state == "cancelled"
    # Cancelled through the table, as another server process would.
    Jobs(ledger).cancel(first.job_id)
    job = ended(jobs, first.job_id)
    assert job.state == "cancelled" and job.error is not None
    assert job.error["type"] == "urn:chartledger:problem:job-cancelled"
    assert not partial.exists() and not ran_second.is_set()
    for job_id in (first.job_id, queued.job_id):
        assert [e[1].get("outcome") for e in job_events(ledger, job_id)][1] == "cancelled"


def test_a_job_whose_process_is_gone_is_failed_as_interrupted(jobs: Jobs, ledger: Ledger) -> None:
    """Rows as a killed process leaves them (written with raw SQL): one on another host whose
    heartbeat went stale, one of a process of this host that no longer exists, one of another
    host still beating; only the first two are interrupted, by whoever reads next."""
    stale, dead, alive = uuid4(), uuid4(), uuid4()
    old = now_ms() - 10 * 60 * 1000
    rows = [
        (stale, "elsewhere:123", old),
        (dead, f"{jobs.host}:{_a_dead_pid()}", now_ms()),
        (alive, "elsewhere:456", now_ms()),
    ]
    with ledger.db.write(lock=False) as c:
        for job_id, worker, beat in rows:
            c.execute(
                f"INSERT INTO {TABLE} (job_id, kind, user_id, state, done, total, stage, "
                "started, heartbeat, worker, cancel) VALUES (?, 'production', ?, 'running', "
                "5, 10, 'gathering events', ?, ?, ?, 0)",
                (str(job_id), str(USER), old, beat, worker),
            )
    views = {j.job_id: j for j in jobs.listed(None)}
    for job_id in (stale, dead):
        assert views[job_id].state == "failed"
        assert views[job_id].error["type"] == "urn:chartledger:problem:job-interrupted"  # type: ignore[index]
    assert views[alive].state == "running"


def test_stopping_the_runner_interrupts_the_running_job(ledger: Ledger) -> None:
    runner = Jobs(ledger, threads=1)
    running = threading.Event()

    def forever(progress: JobProgress) -> dict[str, Any]:
        running.set()
        while True:
            progress.update(1, None, "waiting")
            time.sleep(0.01)

    job_id = runner.start("backup", USER, forever).job_id
    queued = runner.start("backup", USER, forever).job_id
    assert running.wait(10)
    runner.close()
    for one in (job_id, queued):
        job = Jobs(ledger).get(one)
        assert job is not None and job.state == "failed"
        assert job.error is not None and job.error["type"].endswith(":job-interrupted")


def _a_dead_pid() -> int:
    """The id of a process that has just ended."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)
