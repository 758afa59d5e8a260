"""A practice initialised by `chartledger init` with its first owner, served in process, on
SQLite and on PostgreSQL; clients reach it over HTTP through ``api/client.py``."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from api.cli import main as chartledger
from api.client import Client, TooManyRequests, Unauthorized
from api.session_clocks import SharedSessionClocks
from api.settings import Settings
from domain.throttle import ACCOUNT_LOCK_FAILURES
from events.config import StoreConfig
from projections.runner import read_entries
from tests.support import set_env

OWNER, OWNER_PASSWORD = "olive", "owner-password-1"
ITERATIONS = 1_000  # OWASP's 600,000 in production; low here so logins are quick
TEST_CLIENT = "testclient"  # the address a TestClient calls from unless told otherwise


@dataclass
class Practice:
    settings: Settings
    http: TestClient
    owner_id: str
    totp_secret: bytes
    recovery_codes: list[str]

    def client(self, address: str = TEST_CLIENT) -> Client:
        return Client(http=self.http_client(address))

    def http_client(self, address: str = TEST_CLIENT) -> TestClient:
        # A client of its own (its own headers), on the same app, calling from ``address``.
        return TestClient(self.http.app, raise_server_exceptions=False, client=(address, 50000))

    def owner(self) -> Client:
        client = self.client()
        client.login(OWNER, OWNER_PASSWORD, code_now(self.totp_secret))
        return client

    def leaves(self) -> int:
        ledger = self.http.app.state.services.ledger  # type: ignore[attr-defined]
        with ledger.db.read() as c:
            c.execute("SELECT COUNT(*) FROM ledger_leaves")
            row = c.fetchone()
        assert row is not None
        return int(row[0])


JOB_EVENTS = 2  # a job's Job.Started and Job.Finished (domain/jobs.py)


def finished_job(
    http: httpx.Client | TestClient, started: httpx.Response, timeout: float = 120.0
) -> dict[str, object]:
    """Follow a 202 answer's job (its ``Location``) until it ends; the finished job."""
    assert started.status_code == 202, started.text[:500]
    location = started.headers["location"]
    assert location == f"/jobs/{started.json()['job_id']}"
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, object] = http.get(location).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.05)


def events_of_type(practice: Practice, topic: str) -> list[object]:
    """The decoded events of type ``topic`` (say ``domain.credentials:Account.TotpEnrolled``),
    oldest first, as the log has them."""
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    return [
        entry.event for entry in read_entries(ledger, 0, limit=10_000) if entry.header.type == topic
    ]


def one_line_refusal(capsys: pytest.CaptureFixture[str], server: str, *args: str) -> str:
    """Run the remote CLI against ``server`` with ``args``; it must refuse with exit 2 and one
    line on stderr, ``chartledger: error: ...``, which is returned."""
    try:
        code = chartledger(["--server", server, *args])
    except SystemExit as misuse:  # argparse's refusal of the arguments themselves
        code = int(str(misuse.code))
    assert code == 2
    refused = capsys.readouterr().err.strip().splitlines()
    assert len(refused) == 1 and refused[0].startswith("chartledger: error:"), refused
    return refused[0]


MANAGER = "morgan"


def office_manager(practice: Practice, owner: Client) -> Member:
    """The stories' office manager: a staff member the owner made a user admin."""
    manager = add_member(practice, owner, MANAGER, "Morgan Manager", "staff")
    owner.grant_role(manager.user_id, "user_admin")
    return manager


def lock_out(practice: Practice, username: str) -> None:
    """An intruder's wrong logins as ``username`` from twenty addresses (the test clients' own
    first), five from each: four refused, and the fifth leaves that address waiting. The
    hundredth locks the account to every address it never logged in from."""
    per_address = practice.settings.login_throttle.failures_before_wait
    addresses = [TEST_CLIENT] + [
        f"192.0.2.{n}" for n in range(1, ACCOUNT_LOCK_FAILURES // per_address)
    ]
    for address in addresses:
        intruder = practice.client(address)
        for _ in range(per_address - 1):
            with pytest.raises(Unauthorized):
                intruder.login(username, "guessed-password", "000000")
        with pytest.raises(TooManyRequests):
            intruder.login(username, "guessed-password", "000000")


@pytest.fixture
def token_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the remote CLI keeps this test's session token (CHARTLEDGER_TOKEN_FILE)."""
    path = tmp_path / "token.json"
    monkeypatch.setenv("CHARTLEDGER_TOKEN_FILE", str(path))
    return path


def owner_logs_in_remotely(
    practice: Practice, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``chartledger --server URL login`` as the practice's first owner, with a fresh TOTP code
    (the password from CHARTLEDGER_PASSWORD); its output is read and dropped."""
    totp = code_now(practice.totp_secret)
    assert chartledger(["--server", server, "login", OWNER, "--totp", totp]) == 0
    capsys.readouterr()


_used_steps: set[tuple[bytes, int]] = set()


def code_now(secret: bytes) -> str:
    """A TOTP code not yet used with ``secret`` (a code is accepted once; drift allows ±1 step)."""
    step = int(datetime.now(UTC).timestamp()) // auth.TOTP_STEP
    for candidate in (step, step + 1):
        if (secret, candidate) not in _used_steps:
            _used_steps.add((secret, candidate))
            return auth.hotp(secret, candidate)
    raise AssertionError("more than two TOTP logins within one step for one user")


@pytest.fixture
def practice(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Practice]:
    set_env(store_config, monkeypatch)
    monkeypatch.setenv("CHARTLEDGER_PBKDF2_ITERATIONS", str(ITERATIONS))
    monkeypatch.setenv("CHARTLEDGER_OWNER_PASSWORD", OWNER_PASSWORD)
    capsys.readouterr()
    code = chartledger(
        ["init", "--name", "E2E Practice", "--owner", OWNER, "--owner-name", "Olive"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    owner_id = re.search(r"First owner 'olive' \(user ([0-9a-f-]+)\)", out)
    secret = re.search(r"totp secret:  ([A-Z2-7]+)", out)
    codes = re.findall(r"^    ([A-Z2-7]{5}(?:-[A-Z2-7]{5}){3})$", out, re.MULTILINE)
    assert owner_id and secret and len(codes) == 10, out
    settings = Settings(store=store_config, pbkdf2_iterations=ITERATIONS, background=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        yield Practice(settings, http, owner_id.group(1), auth.from_base32(secret.group(1)), codes)


@dataclass
class Member:
    """A user of the practice as the tests play them: how they log in, whatever the way their
    account was set up (tests call ``add_member`` rather than creating users themselves)."""

    practice: Practice
    user_id: UUID
    username: str
    password: str
    totp_secret: bytes
    token: str | None = None

    def client(self) -> Client:
        """A client of the practice acting as this member: in their latest session (``login``
        starts one the first time). A TOTP code logs a user in once, and a test that acts as
        someone many times needs no new session each time."""
        if self.token is None:
            return self.login()
        client = self.practice.client()
        client.token = self.token
        return client

    def login(self) -> Client:
        """A client in a new session of this member's, logged in with password and TOTP code."""
        client = self.practice.client()
        client.login(self.username, self.password, code_now(self.totp_secret))
        self.token = client.token
        return client


def add_member(practice: Practice, by: Client, username: str, name: str, role: str) -> Member:
    """A new user made by ``by`` (an owner or a user administrator), ready to log in: ``by``
    creates them and gets an enrollment code, which the user spends to set their password and
    enroll their authenticator."""
    password = f"{username}-password-1"
    made = by.create_user(username, name, role)
    enrolled = practice.client().enroll(username, made.enrollment_code, password)
    assert enrolled.totp_secret is not None
    return Member(
        practice, made.user_id, username, password, auth.from_base32(enrolled.totp_secret)
    )


CHARTLEDGER = [sys.executable, "-m", "api.cli"]


@contextmanager
def served(env: dict[str, str]) -> Iterator[str]:
    """``chartledger serve`` with two worker processes on a free port of 127.0.0.1, for the
    practice ``env`` names, until the block ends; yields its URL once it answers. What the
    server printed is shown if the test failed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen(
        [*CHARTLEDGER, "serve", "--workers", "2", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        assert process.stdout is not None
        assert re.search(r"\(2 worker processes\)", process.stdout.readline())
        # Up to three minutes: two workers importing the app on a machine busy with other
        # work (CI runs two test processes) took over 30 s.
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            # A server that stopped (say, its port was taken meanwhile) is said so at once.
            assert process.poll() is None, f"the server stopped: {process.stdout.read()}"
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(20)
        print(process.stdout.read() if process.stdout else "")


def backdate_session(services: Any, session_id: str, seen: float) -> None:
    """Make session ``session_id`` last used at ``seen`` (Unix seconds) as every server reads
    it: the practice home's shared file on SQLite; on PostgreSQL this server's own clock and the
    store's ``session_clocks`` row (raw SQL: the upsert only ever moves a clock forward)."""
    clocks = services.last_seen
    if not isinstance(clocks, SharedSessionClocks):
        clocks[session_id] = seen
        return
    clocks.flush()
    with clocks._lock:
        clocks._known[session_id] = seen
        clocks._pending.pop(session_id, None)
    with services.ledger.db.write(lock=False) as c:
        c.execute(
            "UPDATE session_clocks SET seen = ? WHERE session_id = ?",
            (round(seen * 1000), UUID(session_id)),
        )
