"""PostgreSQL restarted under write load (issue 20): a real ``chartledger serve`` (two worker
processes) on a throwaway cluster of the test's own; four clients record labs while the cluster
is restarted twice: ``pg_ctlcluster restart -m fast`` (every connection the servers hold is
closed under them), then ``-m immediate`` (a crash: PostgreSQL recovers from its WAL). The
servers reconnect by themselves; every lab answered 201 is in the log exactly once; every other
answer is a clean 503 problem with Retry-After, never a 500, and the servers log no traceback;
the store verifies, keyless and with keys.

Each write is sent once, without the client's retries, so every answer the server gave is seen.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from api import auth
from api.client import Client
from api.demo import demo_totp_secret
from events.config import StoreConfig
from events.ledger import Ledger
from projections.runner import read_entries
from tests.e2e.test_server_workers import register
from tests.faults.conftest import Cluster, cli, make_practice, practice_env, serving

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.slow]

CLIENTS = 4
LOAD_SECONDS = 1.5  # of writes before the restart
AFTER = 2 * CLIENTS  # writes kept after the restart before the load stops (at most BOUND s)
BOUND = 30.0
RECEIVED = "domain.labs:LabResult.Received"


class Answers:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: list[str] = []
        self.statuses: Counter[int | str] = Counter()
        self.bad: list[str] = []  # answers that are not a clean problem

    def note(self, mark: str, response: httpx.Response | None) -> None:
        with self.lock:
            if response is None:
                self.statuses["unanswered"] += 1
                return
            self.statuses[response.status_code] += 1
            if response.status_code == 201:
                self.kept.append(mark)
            elif response.status_code == 503:
                clean = (
                    response.headers.get("content-type") == "application/problem+json"
                    and response.headers.get("retry-after", "").isdigit()
                    and response.json().get("status") == 503
                    and "Traceback" not in response.text
                )
                if not clean:
                    self.bad.append(f"{response.headers} {response.text[:300]}")
            else:
                self.bad.append(f"{response.status_code} {response.text[:300]}")


def write(
    url: str, token: str, patient: UUID, c: int, stop: threading.Event, answers: Answers
) -> None:
    n = 0
    with httpx.Client(base_url=url, timeout=30, headers={"Authorization": f"Bearer {token}"}) as h:
        while not stop.is_set():
            mark = f"PGR-{c}-{n}"
            n += 1
            body = {
                "patient_id": str(patient),
                "loinc_code": "2345-7",
                "test_name": "Glucose",
                "value": "5.2",
                "unit": "mg/dL",
                "performing_lab": mark,
            }
            try:
                got = h.post("/labs", json=body, headers={"Idempotency-Key": str(uuid4())})
            except httpx.HTTPError:
                got = None  # the server itself is never stopped: counted, and refused below
            answers.note(mark, got)
            if got is not None and got.status_code == 503:
                time.sleep(0.2)  # as a polite client would, a fraction of Retry-After


def labs_in_log(home: Path, url: str) -> Counter[str]:
    ledger = Ledger(StoreConfig(home=home, database_url=url))
    try:
        return Counter(
            entry.event.performing_lab  # type: ignore[attr-defined]
            for entry in read_entries(ledger, 0, limit=100_000)
            if entry.header.type == RECEIVED
        )
    finally:
        ledger.close()


def test_writes_across_a_postgresql_restart_are_kept_or_refused_cleanly(
    cluster: Cluster, tmp_path: Path
) -> None:
    url = f"{cluster.url}?schema=restart"
    env = practice_env(tmp_path / "home", url, CHARTLEDGER_POOL_SIZE="4")
    make_practice(env)
    with serving(env, tmp_path / "serve.log", workers=2) as served:
        clinician = Client(served.url)
        clinician.login(
            "dr.ames", "demo-clinician-1", auth.totp(demo_totp_secret("dr.ames"), int(time.time()))
        )
        assert clinician.token is not None
        patient = register(served.url, clinician, "PGR-1")
        answers = Answers()
        stop = threading.Event()
        writers = [
            threading.Thread(
                target=write, args=(served.url, clinician.token, patient, c, stop, answers)
            )
            for c in range(CLIENTS)
        ]
        for w in writers:
            w.start()
        time.sleep(LOAD_SECONDS)
        kept = [answers.statuses[201]]
        # An orderly restart (fast: sessions closed under the servers), then a crash and its
        # recovery (immediate). After each, the load goes on until the servers have kept a few
        # writes on the restarted cluster (polled, bounded: a loaded machine is slower back).
        for mode in ("fast", "immediate"):
            cluster.ctl("restart", "-m", mode)
            restarted_at = answers.statuses[201]
            deadline = time.monotonic() + BOUND
            while answers.statuses[201] < restarted_at + AFTER and time.monotonic() < deadline:
                time.sleep(0.05)
            kept.append(answers.statuses[201] - restarted_at)
        stop.set()
        for w in writers:
            w.join(60)
        print(f"answers {dict(answers.statuses)}; 201 before, after each restart: {kept}")
        assert not answers.bad, answers.bad[:5]
        assert answers.statuses["unanswered"] == 0, answers.statuses
        assert all(kept), answers.statuses  # it wrote, and it came back each time
        # The server's own view of itself is healthy again, and a read still works.
        assert httpx.get(served.url + "/health").status_code == 200
        assert clinician.chart(patient).entries
        assert "Traceback" not in served.output(), served.output()  # nothing unexpected
    in_log = labs_in_log(tmp_path / "home", url)
    assert {m: in_log[m] for m in answers.kept} == dict.fromkeys(answers.kept, 1)
    assert max(in_log.values()) == 1  # nothing twice
    verifies(env, url)


def verifies(env: dict[str, str], url: str) -> None:
    """`python -m verify store` (keyless) and `chartledger verify` both pass."""
    keyless = subprocess.run(
        [sys.executable, "-m", "verify", "store", "--database-url", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert keyless.returncode == 0, keyless.stdout + keyless.stderr
    done = cli(env, "verify")
    assert done.returncode == 0, done.stdout + done.stderr
