"""What the fault tests share: a PostgreSQL cluster of their own (the shared one at
127.0.0.1:5432 is never restarted), a practice made by the real CLI, and a real ``chartledger
serve`` in a process group of its own, so a test can SIGKILL it whole."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import REQUIRE_PG
from tests.e2e.conftest import CHARTLEDGER, OWNER

PG_VERSIONS = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster (pg_createcluster), trust auth on 127.0.0.1."""

    version: str
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, action: str, *options: str) -> None:
        done = subprocess.run(
            ["pg_ctlcluster", self.version, self.name, action, *options],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One cluster per module, dropped at its end; skipped (failed under CI or
    CHARTLEDGER_REQUIRE_POSTGRES) where it cannot be made: it needs root and the server
    packages."""
    versions = sorted(PG_VERSIONS.iterdir()) if PG_VERSIONS.exists() else []
    made = None
    if versions and shutil.which("pg_createcluster") and os.geteuid() == 0:
        made = Cluster(versions[-1].name, f"chl_faults_{secrets.token_hex(4)}", free_port())
        done = subprocess.run(
            [
                *("pg_createcluster", made.version, made.name, "-p", str(made.port), "--start"),
                *("--", "--auth=trust"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            subprocess.run(["pg_dropcluster", "--stop", made.version, made.name])
            reason = done.stderr.strip()[-300:]
            made = None
    else:
        reason = "needs root and pg_createcluster"
    if made is None:
        if REQUIRE_PG:
            pytest.fail(f"a throwaway PostgreSQL cluster cannot be made: {reason}")
        pytest.skip(f"a throwaway PostgreSQL cluster cannot be made: {reason}")
    try:
        yield made
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", made.version, made.name], capture_output=True, timeout=60
        )


def practice_env(home: Path, database_url: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTLEDGER_")}
    env.update(
        CHARTLEDGER_HOME=str(home),
        CHARTLEDGER_PBKDF2_ITERATIONS="1000",
        CHARTLEDGER_VECTORS=os.environ.get("CHARTLEDGER_VECTORS", ""),
        **extra,
    )
    if not env["CHARTLEDGER_VECTORS"]:
        del env["CHARTLEDGER_VECTORS"]
    if database_url:
        env["CHARTLEDGER_DATABASE_URL"] = database_url
    return env


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CHARTLEDGER, *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=180,
    )


def make_practice(env: dict[str, str], patients: int = 1) -> None:
    """`chartledger init` and `demo` (the demo's users, their TOTP secrets known)."""
    for command in (["init", "--name", "Faults"], ["demo", "--patients", str(patients)]):
        done = cli(env, *command)
        assert done.returncode == 0, done.stderr


def init_owned(env: dict[str, str], name: str) -> str:
    """`chartledger init` of a practice named ``name`` with the e2e owner; the owner's TOTP
    secret (base32), as init prints it."""
    made = cli(env, "init", "--name", name, "--owner", OWNER, "--owner-name", "Olive")
    assert made.returncode == 0, made.stderr
    secret = re.search(r"totp secret:  ([A-Z2-7]+)", made.stdout)
    assert secret, made.stdout
    return secret.group(1)


class Served:
    """A running ``chartledger serve``: its URL, its process (group leader) and its output."""

    def __init__(self, url: str, process: subprocess.Popen[bytes], log: Path) -> None:
        self.url, self.process, self.log = url, process, log

    def kill(self) -> None:
        """SIGKILL the server and its worker processes."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start(env: dict[str, str], log: Path, workers: int = 1, port: int | None = None) -> Served:
    port = port or free_port()
    out = log.open("ab")
    process = subprocess.Popen(
        [
            *CHARTLEDGER,
            "serve",
            "--workers",
            str(workers),
            "--host",
            "127.0.0.1",
            *("--port", str(port)),
        ],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    out.close()
    return Served(f"http://127.0.0.1:{port}", process, log)


def wait_healthy(served: Served, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert served.process.poll() is None, f"the server stopped: {served.output()}"
        try:
            if httpx.get(served.url + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not answer in {seconds} s: {served.output()}")


@contextmanager
def serving(env: dict[str, str], log: Path, workers: int = 1) -> Iterator[Served]:
    served = start(env, log, workers)
    try:
        wait_healthy(served)
        yield served
    finally:
        if served.process.poll() is None:
            os.killpg(served.process.pid, signal.SIGTERM)
            try:
                served.process.wait(20)
            except subprocess.TimeoutExpired:
                served.kill()
        print(served.output()[-5000:])
