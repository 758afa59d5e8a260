"""The background loops' heartbeats shared by the hosts of a practice on one PostgreSQL
(events/background.py, the ``loop_beats`` table): two homes on one store play two hosts. A loop
beating at host A is ok at host B, A's failure is seen at B, the table merges beats as a file
does, and a reader that cannot reach the database answers from its own home's files.

No server here (tests/e2e/test_two_hosts.py has two); the readers are the ones ``GET /status``
and ``/health`` call (``api.status.background_status`` with ``read_shared``) and ``chartledger
status --local``. PostgreSQL only: SQLite keeps one host, and no table."""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import reduce
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.cli import main as chartledger
from api.status import NOTICES, SIGNER, background_status
from events.background import Heartbeat, read_beat
from events.beats import Beat, encode_beat, merge
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from events.loop_beats import read_shared, record_shared
from tests.conftest import pg_connect
from tests.support import QUIET

pytestmark = pytest.mark.parametrize("store_config", ["postgres"], indirect=True)


@pytest.fixture
def host_b(ledger: Ledger, tmp_path: Path) -> Path:
    """A second practice home on the same store: practice.json and the keys copied, as
    docs/DEPLOYMENT.md §3 says; no heartbeat file of its own yet."""
    home = tmp_path / "b"
    home.mkdir(mode=0o700)
    shutil.copy2(ledger.config.home / "practice.json", home / "practice.json")
    shutil.copytree(ledger.config.home / "keys", home / "keys")
    return home


def states(home: Path, ledger: Ledger) -> dict[str, str]:
    found = background_status(home, shared=lambda: read_shared(ledger.db))
    return {loop.name: loop.state for loop in found.loops}


def local_status(
    home: Path, database_url: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> tuple[int, dict[str, str]]:  # type: ignore[no-untyped-def]
    """``chartledger status --local`` on ``home``: its exit code and each loop's line."""
    monkeypatch.setenv("CHARTLEDGER_HOME", str(home))
    monkeypatch.setenv("CHARTLEDGER_DATABASE_URL", database_url)
    capsys.readouterr()
    code = chartledger(["status", "--local"])
    lines = capsys.readouterr().out.strip().splitlines()
    return code, dict(line.split(": ", 1) for line in lines)


def test_a_loop_beating_at_one_host_is_ok_at_the_other(
    ledger: Ledger, host_b: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    assert states(host_b, ledger)[SIGNER] == "never-ran"
    at_a = Heartbeat(ledger.config.home, SIGNER, 0.5, 2.0, ledger.db)
    at_a.started()
    at_a.ran()

    assert read_beat(host_b, SIGNER) is None  # nothing in B's home...
    assert states(host_b, ledger) == {  # ...and B answers for A's loop
        SIGNER: "ok",
        "views-follower": "never-ran",
        NOTICES: "never-ran",
    }
    assert ledger.config.database_url is not None
    code, lines = local_status(host_b, ledger.config.database_url, capsys, monkeypatch)
    assert code == 1  # the other two loops never ran anywhere
    assert lines[SIGNER].startswith("ok; last ran ")

    # Who wrote last is kept for an operator: this host and process (no PHI in the row).
    rows = ledger.db.query("SELECT name, host, pid FROM loop_beats")
    assert [r[0] for r in rows] == [SIGNER] and rows[0][1:] == (socket.gethostname(), os.getpid())


def test_a_failure_recorded_at_one_host_is_seen_at_the_other(ledger: Ledger, host_b: Path) -> None:
    at_a = Heartbeat(ledger.config.home, NOTICES, 60.0, 180.0, ledger.db)
    at_a.started()
    at_a.failed(ConnectionRefusedError("smtp.example.org refused patient@example.org"))
    at_b = background_status(host_b, shared=lambda: read_shared(ledger.db))
    (notices,) = [loop for loop in at_b.loops if loop.name == NOTICES]
    assert notices.failure == "ConnectionRefusedError"  # its type, never its message
    assert notices.last_failure is not None and notices.last_ran is None
    assert notices.state == "ok"  # just started: not late until a round is missed
    assert "example.org" not in str(ledger.db.query("SELECT * FROM loop_beats"))

    # B itself led the loop once and failed then; A's later failure and good round win.
    Heartbeat(host_b, NOTICES, 60.0, 180.0).failed(TimeoutError())  # B's file only
    at_a.failed(OSError())
    at_a.ran()
    (notices,) = [
        loop
        for loop in background_status(host_b, shared=lambda: read_shared(ledger.db)).loops
        if loop.name == NOTICES
    ]
    assert notices.failure == "OSError" and notices.last_ran is not None


T0 = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
offsets = st.integers(0, 10**9).map(lambda us: T0 + timedelta(microseconds=us))
changes = st.builds(
    Beat,
    name=st.just("x"),
    cadence=st.sampled_from([0.5, 1.0, 60.0]),
    late_after=st.sampled_from([2.0, 3.0, 180.0]),
    started=st.none() | offsets,
    last_ok=st.none() | offsets,
    last_failure=st.none() | offsets,
    failure=st.none() | st.sampled_from(["OperationalError", "OSError", "KeyError"]),
)


def test_the_table_merges_beats_as_a_file_does(ledger: Ledger) -> None:
    @settings(max_examples=40, deadline=None)
    @given(st.lists(changes, min_size=1, max_size=6))
    def merged_alike(written: list[Beat]) -> None:
        name = uuid.uuid4().hex  # a row of its own for each example
        for beat in written:
            record_shared(ledger.db, replace(beat, name=name))
        expected = reduce(merge, [replace(b, name=name) for b in written[1:]], written[0])
        assert read_shared(ledger.db)[name] == replace(expected, name=name)

    merged_alike()


@pytest.fixture
def refusing(ledger: Ledger) -> Iterator[tuple[Ledger, str]]:
    """A second ledger on the same store as a login role of its own, and that role's name: a
    test refuses the role's logins and ends its connections, and the database is unreachable
    for this ledger alone (the shared cluster stays up for every other test)."""
    role = "t_beats_" + uuid.uuid4().hex[:12]
    with pg_connect() as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN SUPERUSER')
    assert ledger.config.database_url is not None
    pg = parse_database_url(ledger.config.database_url)
    url = f"postgresql://{role}@{pg.host}:{pg.port}/{pg.dbname}?schema={pg.schema}"
    other = Ledger(StoreConfig(home=ledger.config.home, database_url=url), **QUIET)
    try:
        yield other, role
    finally:
        other.close()
        with pg_connect() as conn:
            conn.execute(f'ALTER ROLE "{role}" LOGIN')
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_a_reader_that_cannot_reach_the_database_answers_from_its_own_files(
    ledger: Ledger,
    host_b: Path,
    refusing: tuple[Ledger, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    """B failed its own signer's round when the database went away (its file says so); A
    signs and shares it. While B can read the row, the signer is ok at B; once it cannot, B
    answers from its file (late, with its failure) rather than failing the page."""
    reader, role = refusing
    at_b = Heartbeat(host_b, SIGNER, 0.5, 2.0)  # B's file only: its database write failed
    at_b.started()
    at_b.failed(psycopg.OperationalError())
    old = datetime.now(UTC) - timedelta(hours=1)
    raw = read_beat(host_b, SIGNER)
    assert raw is not None
    # B's good rounds are an hour old: late by its file alone.
    (host_b / "status" / f"{SIGNER}.json").write_bytes(
        encode_beat(replace(raw, started=old, last_ok=old))
    )
    at_a = Heartbeat(ledger.config.home, SIGNER, 0.5, 2.0, ledger.db)
    at_a.ran()
    assert states(host_b, reader)[SIGNER] == "ok"
    assert ledger.config.database_url is not None
    code, lines = local_status(host_b, ledger.config.database_url, capsys, monkeypatch)
    assert lines[SIGNER].startswith("ok")

    with pg_connect() as conn:  # the database now refuses the reader
        conn.execute(f'ALTER ROLE "{role}" NOLOGIN')
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,)
        )
        count = "SELECT count(*) FROM pg_stat_activity WHERE usename = %s"
        while conn.execute(count, (role,)).fetchone() != (0,):  # each one gone
            time.sleep(0.05)
    began = time.monotonic()
    found = background_status(host_b, shared=lambda: read_shared(reader.db))
    assert time.monotonic() - began < 10
    (signer,) = [loop for loop in found.loops if loop.name == SIGNER]
    assert (signer.state, signer.failure) == ("late", "OperationalError")
    assert signer.last_ran == old

    # The command likewise, with nothing listening where the database should be.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    away = f"postgresql://postgres@127.0.0.1:{closed}/nowhere"
    code, lines = local_status(host_b, away, capsys, monkeypatch)
    assert code == 1
    assert lines[SIGNER].startswith("late; ") and "(OperationalError)" in lines[SIGNER]
