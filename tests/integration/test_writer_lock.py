"""The SQLite writer lock file (events/writer_lock.py): writers of any process wait their turn on
it, a writer that cannot get it in time goes on to SQLite's own lock, and what is written is the
same either way."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from events import writer_lock as module
from events.config import StoreConfig
from events.ledger import Ledger
from tests.support import QUIET, Chart, init_practice


@pytest.fixture
def sqlite_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    config = StoreConfig(home=tmp_path / "home")
    init_practice(config, monkeypatch)
    ledger = Ledger(config, **QUIET)
    yield ledger
    ledger.close()


def lock_file(ledger: Ledger) -> Path:
    return Path(str(ledger.config.sqlite_path) + "-writer")


def held_elsewhere(path: Path) -> int:
    """The lock file taken as another process would take it: its own open file."""
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def size(ledger: Ledger) -> int:
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM ledger_leaves")
        return c.fetchone()[0]


def test_the_lock_file_sits_beside_the_store_readable_by_its_owner_only(
    sqlite_ledger: Ledger,
) -> None:
    sqlite_ledger.save(Chart(subjects=("patient:1",), text="a"))
    assert stat.S_IMODE(lock_file(sqlite_ledger).stat().st_mode) == 0o600


def test_a_writer_waits_while_another_holds_the_lock_and_writes_once_it_is_free(
    sqlite_ledger: Ledger,
) -> None:
    sqlite_ledger.save(Chart(subjects=("patient:1",), text="a"))
    before = size(sqlite_ledger)
    fd = held_elsewhere(lock_file(sqlite_ledger))
    saved = threading.Event()

    def save() -> None:
        sqlite_ledger.save(Chart(subjects=("patient:2",), text="b"))
        saved.set()

    writer = threading.Thread(target=save)
    writer.start()
    try:
        assert not saved.wait(0.5)  # waiting on the lock file, nothing written
        assert size(sqlite_ledger) == before
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    assert saved.wait(10)
    writer.join()
    assert size(sqlite_ledger) == before + 1


def test_a_writer_that_cannot_get_the_lock_in_time_goes_on_to_sqlites_own(
    sqlite_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_ledger.save(Chart(subjects=("patient:1",), text="a"))
    before = size(sqlite_ledger)
    monkeypatch.setattr(module, "WAIT_AT_MOST", 0.05)
    fd = held_elsewhere(lock_file(sqlite_ledger))
    try:
        sqlite_ledger.save(Chart(subjects=("patient:2",), text="b"))
    finally:
        os.close(fd)
    assert size(sqlite_ledger) == before + 1


def test_a_thread_writing_inside_its_own_write_takes_the_lock_once(
    sqlite_ledger: Ledger,
) -> None:
    lock = module.writer_lock(sqlite_ledger.db.datastore)
    with lock.held(), lock.held():
        pass
    fd = held_elsewhere(lock_file(sqlite_ledger))  # free again: taken at once here
    os.close(fd)


# The connection a process writes through (WriterLock.connection).


def leaves_at(ledger: Ledger, position: int) -> int:
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM ledger_leaves WHERE position = ?", (position,))
        return c.fetchone()[0]


def test_a_write_that_fails_in_its_body_is_rolled_back_and_the_next_one_commits(
    sqlite_ledger: Ledger,
) -> None:
    sqlite_ledger.save(Chart(subjects=("patient:1",), text="a"))
    tip = size(sqlite_ledger)
    with pytest.raises(RuntimeError), sqlite_ledger.db.write() as c:
        c.execute(
            "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
            (tip, "0" * 32, 1, b"x"),
        )
        raise RuntimeError("the caller gave up")
    assert leaves_at(sqlite_ledger, tip) == 0
    sqlite_ledger.save(Chart(subjects=("patient:2",), text="b"))
    assert size(sqlite_ledger) == tip + 1


@pytest.mark.parametrize(
    ("statement", "error"),
    [
        # refused by the store's own trigger: an event without its leaf
        (
            "INSERT INTO stored_events (originator_id, originator_version, topic, state, "
            "position) VALUES ('x', 1, 't', x'00', 999999)",
            sqlite3.IntegrityError,
        ),
        # an error of SQLite's, after which the connection is replaced
        ("SELECT * FROM no_such_table", sqlite3.OperationalError),
    ],
)
def test_after_sqlite_refuses_a_statement_the_next_write_commits(
    sqlite_ledger: Ledger, statement: str, error: type[Exception]
) -> None:
    sqlite_ledger.save(Chart(subjects=("patient:1",), text="a"))
    tip = size(sqlite_ledger)
    with pytest.raises(error), sqlite_ledger.db.write() as c:
        c.execute(statement)
    for n in range(3):
        sqlite_ledger.save(Chart(subjects=(f"patient:{n + 2}",), text="b"))
    assert size(sqlite_ledger) == tip + 3


def test_closing_the_ledger_closes_the_connection_it_wrote_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = StoreConfig(home=tmp_path / "home")
    init_practice(config, monkeypatch)
    ledger = Ledger(config, **QUIET)
    ledger.save(Chart(subjects=("patient:1",), text="a"))
    wal = Path(str(config.sqlite_path) + "-wal")
    assert wal.exists()
    ledger.close()
    # SQLite folds the WAL into the database and removes it when its last connection closes.
    assert not wal.exists()
