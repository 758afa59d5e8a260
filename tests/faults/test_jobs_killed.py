"""A server SIGKILLed in the middle of each kind of job (issue 20), on both stores: a
production, an EHI export, an import and a backup, each started over HTTP against a real
``chartledger serve``. The kill lands while the job is running (its progress is polled, then the
server's whole process group is killed). After a restart: each job is ``failed`` with
``job-interrupted`` and its end recorded (``Job.Finished``), nothing partial looks complete (no
bundle, no export manifest served, no backup folder, no imported lab), the store verifies, and
the same request made again succeeds.

Two jobs run at once in a server process (api/jobs/runner.py THREADS), so one kill takes two:
production and export first, then import and backup."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from events.backup_check import check_backup
from events.config import StoreConfig
from tests.e2e.conftest import events_of_type
from tests.e2e.conftest import practice as practice
from tests.e2e.test_clinical import ada
from tests.e2e.test_jobs import FINISHED, PRODUCED, RESULTS, Story, bearer, bundles, server
from tests.e2e.test_jobs import story as story
from tests.integration.test_concurrency import verdicts
from tests.support import oru_r01

pytestmark = pytest.mark.faults

INTERRUPTED = "urn:chartledger:problem:job-interrupted"
RECEIVED = "domain.labs:LabResult.Received"
ENDED = ("succeeded", "failed", "cancelled")


def requests(story: Story) -> dict[str, tuple[str, str, dict[str, Any]]]:
    """Each kind of job's request: who makes it, and what."""
    mrn = ada().mrn
    return {
        "production": ("risk", f"/matters/{story.matter_id}/productions", {"json": {}}),
        "export": ("owner", "/exports", {"json": {"all": True}}),
        "import": (
            "owner",
            "/imports/labs",
            {
                "content": oru_r01(mrn, RESULTS, control_id="KILLED01"),
                "headers": {"Content-Type": "x-application/hl7-v2+er7"},
            },
        ),
        "backup": ("owner", "/backups", {}),
    }


def headers(story: Story, who: str) -> dict[str, str]:
    if who == "risk":
        return bearer(story.risk)
    return {"Authorization": f"Bearer {story.owner.token}"}


def start(url: str, story: Story, kind: str) -> dict[str, Any]:
    who, path, kwargs = requests(story)[kind]
    extra = kwargs.pop("headers", {})
    with httpx.Client(base_url=url, headers={**headers(story, who), **extra}, timeout=60) as h:
        started = h.post(path, **kwargs)
    assert started.status_code == 202, started.text[:500]
    job: dict[str, Any] = started.json()
    job["_who"] = who
    return job


def job_now(url: str, story: Story, job: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=url, headers=headers(story, job["_who"]), timeout=60) as h:
        got: dict[str, Any] = h.get(f"/jobs/{job['job_id']}").json()
    got["_who"] = job["_who"]
    return got


def kill_mid(url: str, story: Story, process: Any, kinds: tuple[str, str]) -> list[dict[str, Any]]:
    """Start the two jobs, wait until both are running (progress moved or a stage named), and
    SIGKILL the server's process group; the jobs as last seen running."""
    jobs = [start(url, story, kind) for kind in kinds]
    deadline = time.monotonic() + 60
    while True:
        jobs = [job_now(url, story, j) for j in jobs]
        assert all(j["state"] not in ENDED for j in jobs), [(j["kind"], j["state"]) for j in jobs]
        if all(j["state"] == "running" and (j["done"] or j["stage"]) for j in jobs):
            break
        assert time.monotonic() < deadline, jobs
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    return jobs


def assert_interrupted(url: str, story: Story, jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        after = job_now(url, story, job)
        assert after["state"] == "failed", after
        assert after["error"]["type"] == INTERRUPTED, after
        assert after["finished_at"] is not None


def labs_received(story: Story) -> int:
    return len(events_of_type(story.practice, RECEIVED))


def nothing_looks_finished(story: Story, url: str, home: Path) -> None:
    assert bundles(story) == [] and events_of_type(story.practice, PRODUCED) == []
    for folder in (home / "exports", home / "backups"):  # hidden: .partial-… (never served)
        visible = [p for p in folder.glob("*") if not p.name.startswith(".")]
        assert visible == [], visible


def test_jobs_killed_mid_work_end_failed_leave_nothing_complete_and_run_again(
    story: Story,
    store_config: StoreConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = story.practice.settings.store.home
    labs_before = labs_received(story)
    with server(home) as (url, process):
        first = kill_mid(url, story, process, ("production", "export"))
    with server(home) as (url, process):  # restarted: it finds the dead process's jobs
        assert_interrupted(url, story, first)
        nothing_looks_finished(story, url, home)
        second = kill_mid(url, story, process, ("import", "backup"))
    with server(home) as (url, _):
        assert_interrupted(url, story, second)
        nothing_looks_finished(story, url, home)
        assert labs_received(story) == labs_before  # the import wrote all or nothing: nothing
        finished = events_of_type(story.practice, FINISHED)
        failed = [e for e in finished if e.outcome == "failed"]  # type: ignore[attr-defined]
        assert len(failed) == 4, finished  # each end recorded once
        for code, out in verdicts(store_config, capsys):
            assert code == 0, out
        # The same requests made again (new requests: a repeat with the same Idempotency-Key
        # would be answered with the failed job) succeed, two at a time.
        results = {}
        for pair in (("production", "export"), ("import", "backup")):
            jobs = [start(url, story, kind) for kind in pair]
            while any(j["state"] not in ENDED for j in jobs):
                time.sleep(0.05)
                jobs = [job_now(url, story, j) for j in jobs]
            for job in jobs:
                assert job["state"] == "succeeded", job
                results[job["kind"]] = job["result"]
    assert [p.name for p in bundles(story)] == [f"{results['production']['production_id']}.zip"]
    assert labs_received(story) == labs_before + RESULTS
    backup = home / results["backup"]["folder"]
    assert check_backup(backup, story.practice.settings.store.master_key_path.read_bytes())
