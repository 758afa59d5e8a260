"""Long work as jobs over a real ``chartledger serve`` (issue 18), on both stores: a production
answers 202 with its job, moves while it runs, goes on after the client has gone, is followed
from another server process to its end and its download; a clinician does not see another's
job; a production that cannot be written (its folder's disk is full) fails with a problem and
leaves no bundle and no record of one; a server killed mid-production leaves the job failed as
interrupted, no bundle, and a retry succeeds; a cancelled production leaves nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest

from api.cli import main as chartledger
from api.client import Client, Conflict, Forbidden, NotFound, ServerError
from api.hold_schemas import HoldIn, ScopeIn
from events.backup_check import check_backup
from tests.e2e.conftest import (
    CHARTLEDGER,
    JOB_EVENTS,
    OWNER_PASSWORD,
    Member,
    Practice,
    add_member,
    events_of_type,
    finished_job,
    one_line_refusal,
    owner_logs_in_remotely,
    token_file,  # noqa: F401  (the fixture)
)
from tests.e2e.test_clinical import ada
from tests.support import oru_r01
from verify.bundle import verify_bundle

RESULTS = 3_000  # lab results in the patient's chart: a production of a second or more
PRODUCED = "legal_hold.productions:Production.Produced"
FINISHED = "domain.jobs:Job.Finished"


@dataclass
class Story:
    practice: Practice
    owner: Client
    risk: Member
    casey: Member
    matter_id: UUID

    def productions(self) -> Path:
        return self.practice.settings.store.home / "productions"


@pytest.fixture
def story(practice: Practice) -> Story:
    """A risk manager's matter holding a patient with a few thousand lab results, and a
    clinician (the custodian) in the patient's care."""
    owner = practice.owner()
    risk = add_member(practice, owner, "rita", "Rita", "risk_manager")
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    patient = owner.register_patient(ada()).patient_id
    owner.assign_care(patient, casey.user_id)
    report = owner.import_labs(oru_r01(ada().mrn, RESULTS))  # itself a job, waited for
    assert report.written and report.accepted == 1  # one message of RESULTS results
    rita = risk.client()
    matter = rita.open_matter("Doe v. Practice", "CV-2026-18")
    scope = ScopeIn(patients=[patient], custodians=[casey.user_id])
    rita.place_hold(matter.matter_id, HoldIn(name="records", scope=scope))
    return Story(practice, owner, risk, casey, matter.matter_id)


@contextmanager
def server(home: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``chartledger serve`` (one worker) for the practice the environment names, in a
    process group of its own (so a test can kill it whole); its URL once it answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [*CHARTLEDGER, "serve", "--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "CHARTLEDGER_POOL_SIZE": "4"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        print(process.stdout.read() if process.stdout else "")


def bearer(member: Member) -> dict[str, str]:
    client = member.client()
    assert client.token is not None
    return {"Authorization": f"Bearer {client.token}"}


def start_production(url: str, story: Story) -> dict[str, Any]:
    """POST the production and drop the connection at once: the client leaves."""
    with httpx.Client(base_url=url, headers=bearer(story.risk), timeout=60) as http:
        started = http.post(f"/matters/{story.matter_id}/productions", json={})
        assert started.status_code == 202, started.text
        assert started.headers["location"] == f"/jobs/{started.json()['job_id']}"
    job: dict[str, Any] = started.json()
    assert job["kind"] == "production" and job["state"] in ("queued", "running")
    assert job["result"] is None and job["error"] is None
    return job


def bundles(story: Story) -> list[Path]:
    """Anything in the productions folder that looks like a bundle."""
    return sorted(story.productions().glob("*.zip")) if story.productions().exists() else []


def test_a_production_is_a_job_followed_from_another_server_to_its_download(
    story: Story, tmp_path: Path
) -> None:
    home = story.practice.settings.store.home
    with server(home) as (first, _), server(home) as (second, _):
        job = start_production(first, story)
        # Followed on the other server process, with nobody connected to the first.
        with httpx.Client(base_url=second, headers=bearer(story.risk), timeout=60) as http:
            seen = []
            while job["state"] not in ("succeeded", "failed", "cancelled"):
                seen.append((job["state"], job["stage"], job["done"], job["total"]))
                job = http.get(f"/jobs/{job['job_id']}").json()
            assert job["state"] == "succeeded", job
            done = {d for state, _, d, _ in seen if state == "running"}
            assert len(done) >= 2, seen  # progress moved while it ran
            assert "gathering events" in {stage for _, stage, _, _ in seen}, seen
            assert job["finished_at"] >= job["started_at"]
            produced = job["result"]
            assert produced["download"] == f"/productions/{produced['production_id']}/bundle"
            assert produced["events"] > RESULTS
            bundle = http.get(produced["download"])
            assert bundle.status_code == 200
            assert hashlib.sha256(bundle.content).hexdigest() == produced["sha256"]
            assert [j["job_id"] for j in http.get("/jobs").json()] == [job["job_id"]]
            assert http.get("/jobs", params={"all": "true"}).status_code == 403
        out = tmp_path / "bundle.zip"
        out.write_bytes(bundle.content)
        assert verify_bundle(out).ok
        # Another clinician sees neither the job nor it in a list; an owner sees both.
        with httpx.Client(base_url=second, headers=bearer(story.casey)) as casey:
            missing = casey.get(f"/jobs/{job['job_id']}")
            assert missing.status_code == 404 and "production" not in missing.text
            assert casey.delete(f"/jobs/{job['job_id']}").status_code == 404
            assert casey.get("/jobs").json() == []
    assert story.owner.job(job["job_id"])["state"] == "succeeded"
    assert len(events_of_type(story.practice, PRODUCED)) == 1


def test_a_server_killed_mid_production_leaves_the_job_interrupted_and_no_bundle(
    story: Story,
) -> None:
    home = story.practice.settings.store.home
    with server(home) as (url, process):
        job = start_production(url, story)
        with httpx.Client(base_url=url, headers=bearer(story.risk), timeout=60) as http:
            while job["stage"] != "gathering events":
                assert job["state"] in ("queued", "running"), job
                job = http.get(f"/jobs/{job['job_id']}").json()
        os.killpg(process.pid, signal.SIGKILL)  # the server and its worker, mid-production
        process.wait(30)
    with server(home) as (url, _):  # restarted
        rita = Client(url, timeout=60)
        rita.token = story.risk.client().token
        after = rita.job(job["job_id"])
        assert after["state"] == "failed", after
        assert after["error"]["type"] == "urn:chartledger:problem:job-interrupted"
        assert bundles(story) == [] and events_of_type(story.practice, PRODUCED) == []
        [finished] = events_of_type(story.practice, FINISHED)[-1:]
        assert finished.outcome == "failed"  # type: ignore[attr-defined]
        # Started again, it succeeds; only its bundle is there.
        produced = rita.produce(story.matter_id)
    assert [p.name for p in bundles(story)] == [f"{produced['production_id']}.zip"]
    assert verify_bundle(bundles(story)[0]).ok


def test_a_production_whose_disk_fills_fails_with_a_problem_and_leaves_nothing(
    story: Story,
) -> None:
    """The productions folder on a tmpfs of 16 KB (the store elsewhere, on either store): the
    bundle cannot be written, the job fails 503 storage-full and nothing looks produced; freed,
    it works."""
    folder = story.productions()
    folder.mkdir(mode=0o700, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", str(folder)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("a tmpfs cannot be mounted here (root is needed)")
        pytest.skip("a tmpfs cannot be mounted here (root is needed)")
    rita = story.risk.client()
    try:
        with pytest.raises(ServerError) as full:
            rita.produce(story.matter_id)
        assert full.value.status == 503 and full.value.type.endswith(":storage-full")
        assert list(folder.iterdir()) == []  # no bundle, no partial one
        assert events_of_type(story.practice, PRODUCED) == []
        [finished] = events_of_type(story.practice, FINISHED)[-1:]
        assert finished.outcome == "failed"  # type: ignore[attr-defined]
        assert finished.problem_type == "urn:chartledger:problem:storage-full"  # type: ignore[attr-defined]
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    produced = rita.produce(story.matter_id)
    assert [p.name for p in bundles(story)] == [f"{produced['production_id']}.zip"]


def test_a_cancelled_production_leaves_nothing(story: Story) -> None:
    rita = story.risk.client()
    leaves = story.practice.leaves()
    job = rita.start_job("POST", f"/matters/{story.matter_id}/productions", json={})
    cancelled = rita.cancel_job(job["job_id"])
    assert cancelled["state"] in ("queued", "running", "cancelled")
    with pytest.raises(Conflict) as stopped:
        rita.wait_for_job(cancelled)
    assert stopped.value.type == "urn:chartledger:problem:job-cancelled"
    assert rita.job(job["job_id"])["state"] == "cancelled"
    assert bundles(story) == [] and events_of_type(story.practice, PRODUCED) == []
    assert not [p for p in story.productions().iterdir() if p.name.startswith(".producing")]
    # Its start and end are recorded, and the production's reads (it had begun) at most.
    assert story.practice.leaves() >= leaves + JOB_EVENTS


def test_the_cli_backs_up_on_the_server_and_follows_lists_and_cancels_jobs(
    story: Story,
    token_file: Path,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = story.practice.settings.store.home
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)
    with server(home) as (url, _):
        owner_logs_in_remotely(story.practice, url, capsys)
        assert chartledger(["--server", url, "backups", "create"]) == 0
        out, err = capsys.readouterr()
        [folder] = [p for p in (home / "backups").iterdir()]
        assert f"into <CHARTLEDGER_HOME>/backups/{folder.name} " in out
        # The first state the CLI sees depends on how soon the server's worker picks the job up.
        first, *_, last = err.splitlines()
        assert first in ("backup queued...", "backup running...") and last == "backup succeeded"
        checked = check_backup(folder, story.practice.settings.store.master_key_path.read_bytes())
        assert checked.manifest.backup_event is not None

        produced = start_production(url, story)
        assert chartledger(["--server", url, "jobs", "wait", produced["job_id"]]) == 0
        out, err = capsys.readouterr()
        assert out.startswith(f"{produced['job_id']}  production  succeeded")
        assert '"download": "/productions/' in out and "production gathering events" in err
        assert chartledger(["--server", url, "jobs", "list"]) == 0
        mine = capsys.readouterr().out.splitlines()
        assert [line.split()[1:3] for line in mine] == [
            ["backup", "succeeded"],
            ["import", "succeeded"],  # the story's lab import
        ]  # the owner's own, newest first
        assert chartledger(["--server", url, "jobs", "list", "--all"]) == 0
        listed = capsys.readouterr().out.splitlines()
        assert [line.split()[1:3] for line in listed] == [
            ["production", "succeeded"],
            ["backup", "succeeded"],
            ["import", "succeeded"],  # the story's lab import
        ]  # and the risk manager's job too
        assert chartledger(["--server", url, "jobs", "cancel", produced["job_id"]]) == 0
        assert "production  succeeded" in capsys.readouterr().out  # finished: left as it is
        missing = one_line_refusal(capsys, url, "jobs", "show", str(uuid4()))
        assert "not found" in missing.lower()


def test_exports_and_imports_answer_202_and_what_is_known_at_once_is_refused_at_once(
    practice: Practice,
) -> None:
    owner = practice.owner()
    raw = practice.http_client()
    raw.headers["Authorization"] = f"Bearer {owner.token}"
    nobody = str(uuid4())
    refused = raw.post("/exports", json={"patient_id": nobody})
    assert refused.status_code == 404 and "location" not in refused.headers
    refused = raw.post(
        "/imports/email", params={"patient_id": nobody}, content=b"From: a@b\r\n\r\nhi\r\n"
    )
    assert refused.status_code == 404
    assert raw.get("/jobs").json() == []  # no job for either

    imports = Path(__file__).parent.parent / "fixtures" / "imports"
    csv = (imports / "patients_good.csv").read_bytes()
    mapping = (imports / "billing_map.json").read_text()
    imported = finished_job(
        raw,
        raw.post(
            "/imports/patients",
            params={"mapping": mapping},
            content=csv,
            headers={"content-type": "text/csv"},
        ),
    )
    assert imported["state"] == "succeeded", imported
    assert imported["kind"] == "import" and imported["result"]["accepted"] == 3  # type: ignore[index]
    exported = finished_job(raw, raw.post("/exports", json={"all": True}))
    assert exported["state"] == "succeeded" and exported["kind"] == "export"
    manifest = exported["result"]
    assert isinstance(manifest, dict) and manifest["request"].endswith("/exports")
    export_id = manifest["extension"]["https://chartledger.local/fhir/ehi-export"]["exportId"]
    assert raw.get(f"/exports/{export_id}/manifest.json").json() == manifest
    listed = raw.get("/jobs").json()
    assert [j["kind"] for j in listed] == ["export", "import"]
    # A staff member sees neither; an auditor sees both but may not cancel them.
    staff = add_member(practice, owner, "sam", "Sam", "staff").client()
    auditor = add_member(practice, owner, "aud", "Aud", "auditor").client()
    with pytest.raises(NotFound):
        staff.job(exported["job_id"])  # type: ignore[arg-type]
    assert staff.jobs() == [] and auditor.jobs() == [] and len(auditor.jobs(everyone=True)) == 2
    with pytest.raises(Forbidden):
        staff.jobs(everyone=True)
    with pytest.raises(Forbidden):
        auditor.cancel_job(exported["job_id"])  # type: ignore[arg-type]


def test_a_production_sent_again_with_its_idempotency_key_is_the_same_job(story: Story) -> None:
    rita = story.risk.client()
    raw = story.practice.http_client()
    raw.headers["Authorization"] = f"Bearer {rita.token}"
    key = {"Idempotency-Key": f'"{uuid4()}"'}
    path = f"/matters/{story.matter_id}/productions"
    first = raw.post(path, json={}, headers=key)
    again = raw.post(path, json={}, headers=key)
    assert first.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert again.json()["job_id"] == first.json()["job_id"]
    assert rita.wait_for_job(first.json())["state"] == "succeeded"
    assert [j["job_id"] for j in rita.jobs()] == [first.json()["job_id"]]  # no second job
    assert len(bundles(story)) == 1
