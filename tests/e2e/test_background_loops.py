"""Issue 17: the server's checkpoint signer and views follower outlive a store locked for longer
than their cadence, and are watched: while the lock lasts, ``chartledger status --local``,
``GET /status`` and ``/health`` say the signer is late; once it is released, the same threads
sign the events appended meanwhile and after, and the views catch up, with no request asking.

The lock is real: on SQLite another connection holds ``BEGIN EXCLUSIVE`` on the store's file;
on PostgreSQL another connection holds ``ACCESS EXCLUSIVE`` on the log's leaves table. The
server runs in process (the app's lifespan starts the threads), signing every half second
and giving up on a lock after one second, as CHARTLEDGER_LOCK_TIMEOUT_SECONDS=1 would make it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as chartledger
from api.client import Client, Forbidden, Unauthorized
from api.settings import Settings
from api.status import BackgroundStatus
from domain.patients import Patient
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from projections.rebuild import all_projections
from tests.conftest import pg_connect
from tests.e2e.conftest import (
    ITERATIONS,
    OWNER_PASSWORD,
    Practice,
    add_member,
    owner_logs_in_remotely,
    served,
)
from tests.support import QUIET

CADENCE = 0.5  # seconds between the server's checkpoints here (60 by default)
LOCK_TIMEOUT = 1  # seconds a statement of the server's waits for a lock
PATIENCE = 30.0  # seconds any one expected change may take on a busy machine


def eventually(what: str, check: Callable[[], Any]) -> Any:
    """``check()``'s first truthy answer, looked for until PATIENCE runs out."""
    deadline = time.monotonic() + PATIENCE
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"still not {what} after {PATIENCE} s"
        time.sleep(0.1)


@contextmanager
def store_locked(config: StoreConfig) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
    """Another connection holds the store's lock until the block ends; yields a function that
    reads through that connection (which the lock does not stop)."""
    if config.database_url is None:
        conn = sqlite3.connect(config.sqlite_path, isolation_level=None)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            yield lambda sql: conn.execute(sql).fetchall()
            conn.rollback()
        finally:
            conn.close()
        return
    schema = parse_database_url(config.database_url).schema
    with pg_connect(config.database_url.partition("?")[0]) as pg, pg.transaction():
        pg.execute(f'SET search_path TO "{schema}"')
        pg.execute("LOCK TABLE ledger_leaves IN ACCESS EXCLUSIVE MODE")
        yield lambda sql: pg.execute(sql).fetchall()  # type: ignore[arg-type]


def register_patient(ledger: Ledger, n: int) -> int:
    """Append a patient's registration (with no checkpoint: the ledger is QUIET) and return
    the log's size after it."""
    ledger.save(
        Patient.register(
            mrn=f"BG-{n}", given_name="Quinn", family_name="Locke", birth_date=date(1980, 1, 2),
            sex="female",
        )
    )  # fmt: skip
    return int(ledger.db.query("SELECT MAX(position) + 1 FROM ledger_leaves")[0][0])


def signed(ledger: Ledger, size: int) -> bool:
    return bool(ledger.db.query("SELECT 1 FROM ledger_checkpoints WHERE size = ?", (size,)))


def views_at(ledger: Ledger, size: int) -> bool:
    rows = ledger.db.query("SELECT name, position FROM projection_positions")
    names = {p.name for p in all_projections()}
    return {name for name, position in rows if name in names and position >= size} == names


def local_status(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, str]]:
    """``chartledger status --local``: its exit code and each loop's line, by loop name."""
    capsys.readouterr()
    code = chartledger(["status", "--local"])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, dict(line.split(": ", 1) for line in lines)


def loop(status: BackgroundStatus, name: str) -> Any:
    return next(s for s in status.loops if s.name == name)


def test_the_signer_and_the_follower_outlive_a_locked_store_and_are_reported_late(
    practice: Practice, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_token = practice.owner().token
    writer = Ledger(store_config, **QUIET)  # appends, never signs, never applies a view
    server_config = dataclasses.replace(
        store_config, lock_timeout=LOCK_TIMEOUT, checkpoint_seconds=CADENCE
    )
    settings = Settings(store=server_config, pbkdf2_iterations=ITERATIONS, background=True)
    code, lines = local_status(capsys)
    assert code == 1 and lines["checkpoint-signer"] == "never-ran", lines
    try:
        with TestClient(create_app(settings), raise_server_exceptions=False) as http:
            api = Client(http=http)
            api.token = owner_token
            size = register_patient(writer, 0)
            eventually("signed", lambda: signed(writer, size))
            eventually("caught up", lambda: views_at(writer, size))  # the login's, the patient's
            eventually("healthy", lambda: api.status().healthy)
            health = http.get("/health").json()
            assert (health["status"], health["background"]) == ("ok", "ok")
            assert local_status(capsys)[0] == 0

            # Events the server has still to sign and apply when the lock is taken. Its
            # threads look every half second and may get in first: then look again.
            for attempt in range(1, 6):
                size = register_patient(writer, attempt)
                with store_locked(store_config) as read:
                    pending = not read(f"SELECT 1 FROM ledger_checkpoints WHERE size = {size}")
                    if not pending:
                        continue

                    def reported_late() -> tuple[int, dict[str, str]] | None:
                        code, lines = local_status(capsys)
                        signer = lines["checkpoint-signer"]
                        failed = "last failed" in signer and "(OperationalError)" in signer
                        return (code, lines) if signer.startswith("late") and failed else None

                    code, lines = eventually("reported late, failing", reported_late)
                    assert code == 1
                    if store_config.database_url is None:  # PostgreSQL's lock keeps logins out
                        reported = loop(api.status(), "checkpoint-signer")
                        assert reported.state == "late" and reported.failure, reported
                        assert http.get("/health").json()["background"] == "late"
                    assert not read(f"SELECT 1 FROM ledger_checkpoints WHERE size = {size}")
                break
            else:
                pytest.fail("the server signed every size before the lock could be taken")

            # Released: the same threads sign what waited, then what comes after, and apply it.
            eventually("signed after the lock", lambda: signed(writer, size))
            later = register_patient(writer, 99)
            eventually("signed later", lambda: signed(writer, later))
            eventually("caught up", lambda: views_at(writer, later))
            eventually("healthy again", lambda: api.status().healthy)
            assert local_status(capsys)[0] == 0
    finally:
        writer.close()


def signed_at_least(url: str, size: int) -> bool:
    note = httpx.get(url + "/checkpoints/latest").text
    return int(note.splitlines()[1]) >= size


def ran_each(practice: Practice, url: str) -> bool:
    """Each loop has had a good round, as ``GET /status`` says (asked as the logged-in owner)."""
    token = json.loads(Path(os.environ["CHARTLEDGER_TOKEN_FILE"]).read_text())["token"]
    with Client(url, token=token) as owner:
        return all(loop.last_ran is not None for loop in owner.status().loops)


def test_only_owners_and_auditors_read_the_loops_status_and_health_says_one_word(
    practice: Practice,
) -> None:
    owner = practice.owner()
    auditor = add_member(practice, owner, "audrey", "Audrey Auditor", "auditor").client()
    clinician = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    for reader in (owner, auditor):
        found = reader.status()  # this app runs no loops; no server has run them here
        assert not found.healthy
        assert {s.name: s.state for s in found.loops} == {
            "checkpoint-signer": "never-ran",
            "views-follower": "never-ran",
            "hold-notices": "never-ran",
        }
    with pytest.raises(Forbidden):
        clinician.status()
    with pytest.raises(Unauthorized):
        practice.client().status()
    health = practice.http.get("/health").json()
    assert (health["status"], health["background"]) == ("ok", "off")


@pytest.mark.usefixtures("token_file")
def test_a_served_server_s_workers_report_their_loops_to_the_remote_status(
    practice: Practice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``chartledger serve`` with two workers, each signing; one follows the views. Either
    worker answers with what both wrote to the practice home."""
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)
    with served({**os.environ, "CHARTLEDGER_CHECKPOINT_SECONDS": "1"}) as url:
        eventually("healthy", lambda: httpx.get(url + "/health").json()["background"] == "ok")
        owner_logs_in_remotely(practice, url, capsys)
        size = practice.leaves()  # the login's events, which the served signer signs
        eventually("signed", lambda: signed_at_least(url, size))
        eventually("through a round each", lambda: ran_each(practice, url))
        capsys.readouterr()
        assert chartledger(["--server", url, "status"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["store"]["ok"] and shown["background"]["healthy"]
        assert {s["name"]: s["state"] for s in shown["background"]["loops"]} == {
            "checkpoint-signer": "ok",
            "views-follower": "ok",
            "hold-notices": "ok",
        }
        signer = next(s for s in shown["background"]["loops"] if s["name"] == "checkpoint-signer")
        assert signer["cadence_seconds"] == 1 and signer["late_after_seconds"] == 3
