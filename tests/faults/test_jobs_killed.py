"""A server SIGKILLed in the middle of each kind of job (issue 20), on both stores: a
production, an EHI export, an import and a backup, each started over HTTP against a real
``chartledger serve``. The kill lands while the job is running (its progress is polled, then the
server's whole process group is killed). After a restart: each job is ``failed`` with
``job-interrupted`` and its end recorded (``Job.Finished``), nothing partial looks complete (no
bundle, no export manifest served, no backup folder, no imported lab), the store verifies, and
the same request made again succeeds.

Two jobs run at once in a server process (api/jobs/runner.py THREADS), so one kill takes two:
production and export first, then import and backup. A job that ends in the instant between the
last poll and the kill is not a failure of the server: it must then show as succeeded, with its
artifact, and its kind is killed again in the next round (at most ROUNDS kills)."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
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

pytestmark = [pytest.mark.faults, pytest.mark.slow]

INTERRUPTED = "urn:chartledger:problem:job-interrupted"
RECEIVED = "domain.labs:LabResult.Received"
IMPORTED = "domain.imports.summary:ImportRun.Completed"
ENDED = ("succeeded", "failed", "cancelled")
KINDS = ("production", "export", "import", "backup")
ROUNDS = 4  # kills at most: two cover the four kinds unless a job ends before its kill


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


def kill_mid(url: str, story: Story, process: Any, kinds: tuple[str, ...]) -> list[dict[str, Any]]:
    """Start the jobs, wait until all are running (progress moved or a stage named), and
    SIGKILL the server's process group at once; the jobs started. A job that ended first (the
    kill came late) is told apart after the restart."""
    jobs = [start(url, story, kind) for kind in kinds]
    pollers = {who: httpx.Client(base_url=url, headers=headers(story, who), timeout=60)
               for who in {j["_who"] for j in jobs}}  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            seen = [pollers[j["_who"]].get(f"/jobs/{j['job_id']}").json() for j in jobs]
            if any(j["state"] in ENDED for j in seen) or all(
                j["state"] == "running" and (j["done"] or j["stage"]) for j in seen
            ):
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.01)
    finally:
        for poller in pollers.values():
            poller.close()
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    return jobs


def labs_received(story: Story) -> int:
    return len(events_of_type(story.practice, RECEIVED))


def visible(folder: Path) -> list[Path]:
    """What is in the folder that is not hidden (a job's temporary .partial-… is)."""
    return [p for p in folder.glob("*") if not p.name.startswith(".")]


def only_finished_work_shows(
    story: Story, home: Path, succeeded: Counter[str], labs: int, imports: int
) -> None:
    """Exactly the artifacts of the jobs that succeeded: none of an interrupted one. A lab
    import writes in batches (docs/IMPORTS.md §1): one killed between two leaves the results
    written so far and no summary, and the file imported again finishes it, never doubling one;
    so its results are there once after any import of it that succeeded, and at most once before."""
    assert len(bundles(story)) == succeeded["production"]
    assert len(events_of_type(story.practice, PRODUCED)) == succeeded["production"]
    assert len(visible(home / "exports")) == succeeded["export"], visible(home / "exports")
    assert len(visible(home / "backups")) == succeeded["backup"], visible(home / "backups")
    assert len(events_of_type(story.practice, IMPORTED)) == imports + succeeded["import"]
    if succeeded["import"]:
        assert labs_received(story) == labs + RESULTS
    else:
        assert labs <= labs_received(story) <= labs + RESULTS


def test_jobs_killed_mid_work_end_failed_leave_nothing_complete_and_run_again(
    story: Story,
    store_config: StoreConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    home = story.practice.settings.store.home
    labs, imports = labs_received(story), len(events_of_type(story.practice, IMPORTED))
    pending = list(KINDS)  # kinds not yet caught mid-work by a kill
    succeeded: Counter[str] = Counter()  # jobs that ended before the kill came
    interrupted: Counter[str] = Counter()
    with server(home) as (url, process):
        killed = kill_mid(url, story, process, tuple(pending[:2]))
    for _ in range(ROUNDS):
        with server(home) as (url, process):  # restarted: it finds the dead process's jobs
            for job in killed:
                after = job_now(url, story, job)
                if after["state"] == "succeeded":
                    succeeded[job["kind"]] += 1  # done before the kill: caught next round
                    continue
                assert after["state"] == "failed", after
                assert after["error"]["type"] == INTERRUPTED, after
                assert after["finished_at"] is not None
                interrupted[job["kind"]] += 1
                pending.remove(job["kind"])
            only_finished_work_shows(story, home, succeeded, labs, imports)
            if pending:
                killed = kill_mid(url, story, process, tuple(pending[:2]))
                continue
            finished = events_of_type(story.practice, FINISHED)
            failed = [e for e in finished if e.outcome == "failed"]  # type: ignore[attr-defined]
            assert len(failed) == sum(interrupted.values()) == len(KINDS)  # each end once
            for code, out in verdicts(store_config, capsys):
                assert code == 0, out
            # The same requests made again (new requests: a repeat with the same
            # Idempotency-Key would be answered with the failed job) succeed, two at a time.
            results = {}
            for pair in (KINDS[:2], KINDS[2:]):
                jobs = [start(url, story, kind) for kind in pair]
                while any(j["state"] not in ENDED for j in jobs):
                    time.sleep(0.05)
                    jobs = [job_now(url, story, j) for j in jobs]
                for job in jobs:
                    assert job["state"] == "succeeded", job
                    results[job["kind"]] = job["result"]
                    succeeded[job["kind"]] += 1
            only_finished_work_shows(story, home, succeeded, labs, imports)
            break
    else:
        pytest.fail(f"no kill landed mid-work in {ROUNDS} rounds for {pending}")
    assert f"{results['production']['production_id']}.zip" in {p.name for p in bundles(story)}
    backup = home / results["backup"]["folder"]
    assert check_backup(backup, story.practice.settings.store.master_key_path.read_bytes())
