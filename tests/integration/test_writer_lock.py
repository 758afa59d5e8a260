"""The SQLite writer lock file (events/writer_lock.py): writers of any process wait their turn on
it, a writer that cannot get it in time goes on to SQLite's own lock, and what is written is the
same either way."""

from __future__ import annotations

import fcntl
import os
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
