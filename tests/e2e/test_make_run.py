"""Issue 18: ``make run`` on restart prints only logins that work. The Makefile's own ``run``
target is run (a fresh home, a free port, two demo patients, quick password hashing), its
printed logins are used against the server it started, one user changes their password, and the
second ``make run`` on the same home shows that user as changed and every login it prints
still logs in to the server it starts. SQLite, as ``make run`` uses by default."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from api import auth
from api.client import Client

REPO = Path(__file__).resolve().parents[2]
LOGIN = re.compile(r"^  (\S+) +(\S+) +(\S+) +totp secret:  ([A-Z2-7]+)$", re.M)
PATIENCE = 120.0  # seconds make run may take to serve on a busy machine (demo, then start)


@contextmanager
def make_run(home: Path) -> Iterator[tuple[str, str]]:
    """``make run`` for ``home`` until the block ends; yields the server's URL and what was
    printed before it served."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "CHARTLEDGER_HOME": str(home), "CHARTLEDGER_PBKDF2_ITERATIONS": "1000"}
    for name in ("CHARTLEDGER_DATABASE_URL", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):
        env.pop(name, None)  # SQLite; and not a sub-make of a `make test` running this
    command = ["make", "--no-print-directory", "run", f"RUN_PORT={port}", "DEMO_PATIENTS=2"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: make, the shell, the server
    )
    printed = ""
    try:
        assert process.stdout is not None
        while "Chartledger API on" not in printed:
            line = process.stdout.readline()
            assert line, f"make run ended before serving:\n{printed}"
            printed += line
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + PATIENCE
        while True:
            try:
                if httpx.get(url + "/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"make run's server never answered:\n{printed}"
            time.sleep(0.2)
        yield url, printed
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


_last_step: dict[str, int] = {}  # this test's practice only: a code logs in once


def logs_in(url: str, username: str, password: str, secret: str) -> Client:
    now = int(time.time()) // auth.TOTP_STEP
    step = max(now - 1, _last_step.get(username, now - 2) + 1)  # the server takes now ± 1
    _last_step[username] = step
    client = Client(url)
    client.login(username, password, auth.hotp(auth.from_base32(secret), step))
    return client


def test_make_run_again_prints_only_logins_that_still_work(tmp_path: Path) -> None:
    home = tmp_path / "var"
    with make_run(home) as (url, printed):
        first = {m[0]: (m[1], m[3]) for m in LOGIN.findall(printed)}
        assert set(first) == {"owner", "dr.ames", "dr.baker", "dr.chen", "frontdesk", "risk"}, (
            printed
        )
        for username, (password, secret) in first.items():
            logs_in(url, username, password, secret)
        ames = logs_in(url, "dr.ames", *first["dr.ames"])
        ames.change_password(first["dr.ames"][0], "ames-own-password-1")

    with make_run(home) as (url, printed):
        again = {m[0]: (m[1], m[3]) for m in LOGIN.findall(printed)}
        assert again == {u: v for u, v in first.items() if u != "dr.ames"}, printed
        assert "dr.ames    (password changed since the demo set it)" in printed
        assert first["dr.ames"][0] not in printed and first["dr.ames"][1] not in printed
        for username, (password, secret) in again.items():
            logs_in(url, username, password, secret)
