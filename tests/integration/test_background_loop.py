"""events/background.py on a real thread and real files: a loop outlives store errors and bugs
alike, logs them without their messages (which could quote a record), waits longer while they
last, and ends only when told; its heartbeat file is 0600 in a 0700 folder whatever the umask,
and a process that keeps failing does not hide another's good round."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.status import background_status
from events.background import Heartbeat, keep_running, read_beat

PHI = "Quinn Locke, DOB 1980-01-02"  # what a failure's message might quote


@contextmanager
def running(one_round: Callable[[], None], heartbeat: Heartbeat | None = None) -> Iterator[None]:
    stop = threading.Event()
    thread = threading.Thread(
        target=keep_running, args=("test loop", one_round, stop, 0.05, 0.2, heartbeat), daemon=True
    )
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)
        assert not thread.is_alive(), "the loop did not end when told"


def test_a_loop_outlives_store_errors_and_bugs_and_logs_neither_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[Exception] = [
        sqlite3.OperationalError(f"database is locked: {PHI}"),
        ZeroDivisionError(f"a bug reading {PHI}"),
        sqlite3.OperationalError(f"database is locked: {PHI}"),  # the 3rd in a row: not logged
        OSError(28, f"No space left on device: {PHI}"),
    ]
    rounds: list[float] = []

    def one_round() -> None:
        rounds.append(time.monotonic())
        if failures:
            raise failures.pop(0)

    beat = Heartbeat(tmp_path, "test-loop", 0.05, 1.0)
    with caplog.at_level(logging.WARNING, logger="events.background"), running(one_round, beat):
        deadline = time.monotonic() + 20
        while len(rounds) < 7 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(rounds) >= 7, "the loop stopped after a failure"
    # Waits grow while it fails (0.1, 0.2 then capped at 0.2 s), back to 0.05 s after.
    assert rounds[2] - rounds[1] >= 0.18 and rounds[3] - rounds[2] >= 0.18
    logged = caplog.text
    assert PHI not in logged
    assert "(OperationalError; 1 in a row)" in logged and "(OSError; 4 in a row)" in logged
    assert "3 in a row" not in logged  # the 1st, 2nd, 4th, 8th...: a long outage, few lines
    bug = next(r for r in caplog.records if "ZeroDivisionError" in r.getMessage())
    assert bug.levelno == logging.ERROR and "in one_round" in bug.getMessage()  # its traceback
    assert "working again after 4 failed rounds" in logged
    beat = read_beat(tmp_path, "test-loop")
    assert beat is not None and beat.failure == "OSError"
    assert beat.last_ok is not None and beat.last_failure is not None
    assert beat.last_ok > beat.last_failure and not beat.late(datetime.now(UTC))


def test_a_loop_ends_when_told_even_while_waiting_long_after_failures() -> None:
    def one_round() -> None:
        raise sqlite3.OperationalError("database is locked")

    stop = threading.Event()
    thread = threading.Thread(
        target=keep_running, args=("test loop", one_round, stop, 0.05, 3600.0), daemon=True
    )
    thread.start()
    time.sleep(0.5)  # several failures: now waiting an hour
    stop.set()
    thread.join(5)
    assert not thread.is_alive()


def test_heartbeat_files_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        Heartbeat(tmp_path, "test-loop", 1.0, 3.0).started()
    finally:
        os.umask(old)
    folder = tmp_path / "status"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "test-loop.json"]


def test_a_failing_process_does_not_hide_another_process_s_good_round(tmp_path: Path) -> None:
    """Two workers' signers write one file: the later failure is shown, and so is the good
    round the other worker had, so the loop is not late while either keeps working."""
    working = Heartbeat(tmp_path, "checkpoint-signer", 0.5, 2.0)
    failing = Heartbeat(tmp_path, "checkpoint-signer", 0.5, 2.0)
    working.started()
    failing.started()
    working.ran()
    ok = read_beat(tmp_path, "checkpoint-signer")
    failing.failed(sqlite3.OperationalError("database is locked"))
    beat = read_beat(tmp_path, "checkpoint-signer")
    assert ok is not None and beat is not None
    assert beat.last_ok == ok.last_ok and beat.failure == "OperationalError"
    signer = background_status(tmp_path).loops[0]
    assert (signer.name, signer.state, signer.failure) == (
        "checkpoint-signer",
        "ok",
        "OperationalError",
    )


def test_a_heartbeat_that_cannot_be_written_does_not_stop_the_loop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "status").write_text("a file where the folder should be")
    rounds: list[int] = []
    with running(lambda: rounds.append(1), Heartbeat(tmp_path, "test-loop", 0.05, 1.0)):
        deadline = time.monotonic() + 20
        while len(rounds) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    assert len(rounds) >= 3
    assert caplog.text.count("cannot write its heartbeat") == 1  # said once, not every round


def test_an_unreadable_heartbeat_is_reported_as_such(tmp_path: Path) -> None:
    (tmp_path / "status").mkdir()
    (tmp_path / "status" / "views-follower.json").write_bytes(b"\xff not json")
    states = {s.name: s.state for s in background_status(tmp_path).loops}
    assert states == {
        "checkpoint-signer": "never-ran",
        "views-follower": "unreadable",
        "hold-notices": "never-ran",
    }


def test_a_round_failing_because_the_server_is_stopping_ends_the_loop_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = threading.Event()

    def one_round() -> None:  # the server stops, and closes the store under the round
        stop.set()
        raise sqlite3.ProgrammingError("Cannot operate on a closed database.")

    with caplog.at_level(logging.WARNING, logger="events.background"):
        keep_running("test loop", one_round, stop, 0.01, 0.1)  # returns: the loop has ended
    assert caplog.records == []
