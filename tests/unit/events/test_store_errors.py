"""The rule naming a store condition from a driver's error (events/store_errors.py): every
PostgreSQL SQLSTATE psycopg knows, however deeply eventsourcing wraps it, and SQLite's own
errors as a real SQLite database raises them."""

from __future__ import annotations

import errno
import inspect
import sqlite3
from pathlib import Path

import psycopg
import psycopg.errors
import psycopg_pool
import pytest
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from hypothesis import given
from hypothesis import strategies as st

from events.store_errors import (
    StorageFull,
    StoreBusy,
    StoreUnavailable,
    classify,
    connection_lost,
)

SQLSTATES = sorted(
    {
        cls.sqlstate
        for cls in vars(psycopg.errors).values()
        if inspect.isclass(cls)
        and issubclass(cls, psycopg.Error)
        and getattr(cls, "sqlstate", None)
    }
)


def expected(sqlstate: str) -> type | None:
    """The rule, written out again: class 08 (connection) and 57P (the server going away) are
    unavailable, 53100 is a full disk, 55P03 and 40P01 are a lock not had in time."""
    if sqlstate == "53100":
        return StorageFull
    if sqlstate in ("55P03", "40P01"):
        return StoreBusy
    if sqlstate.startswith(("08", "57P")):
        return StoreUnavailable
    return None


def wrapped(error: BaseException, depth: int, how: list[type[PersistenceError]]) -> BaseException:
    """``error`` raised from ``depth`` wrappers, as eventsourcing and the recorders raise."""
    for level in range(depth):
        outer = how[level % len(how)](str(error))
        outer.__cause__ = error
        error = outer
    return error


WRAPPERS = st.lists(
    st.sampled_from([OperationalError, InterfaceError, PersistenceError]), min_size=1
)


@given(st.sampled_from(SQLSTATES), st.integers(0, 4), WRAPPERS)
def test_every_sqlstate_names_its_condition_through_any_wrapping(
    sqlstate: str, depth: int, how: list[type[PersistenceError]]
) -> None:
    error = psycopg.errors.lookup(sqlstate)("from the server")
    assert classify(wrapped(error, depth, how)) is expected(sqlstate)


@given(st.integers(0, 4), WRAPPERS)
def test_a_connection_libpq_lost_without_a_sqlstate_is_unavailable_and_lost(
    depth: int, how: list[type[PersistenceError]]
) -> None:
    error = wrapped(psycopg.OperationalError("server closed the connection"), depth, how)
    assert classify(error) is StoreUnavailable
    assert connection_lost(error)


@given(st.sampled_from(SQLSTATES))
def test_only_a_lost_connection_leaves_a_commit_in_doubt(sqlstate: str) -> None:
    error = OperationalError("wrapped")
    error.__cause__ = psycopg.errors.lookup(sqlstate)("from the server")
    assert connection_lost(error) is (expected(sqlstate) is StoreUnavailable)


def test_no_connection_from_the_pool_in_time_is_unavailable() -> None:
    assert classify(psycopg_pool.PoolTimeout("no connection")) is StoreUnavailable


@given(st.sampled_from([errno.ENOSPC, errno.EACCES, errno.EIO, errno.ENOENT]))
def test_only_enospc_is_a_full_disk_among_os_errors(code: int) -> None:
    found = classify(OSError(code, "os error"))
    assert found is (StorageFull if code == errno.ENOSPC else None)


def test_sqlite_database_is_locked_after_its_busy_timeout_is_busy(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0.05)
    with pytest.raises(sqlite3.OperationalError) as raised:
        waiter.execute("BEGIN IMMEDIATE")
    assert classify(raised.value) is StoreBusy
    assert not connection_lost(raised.value)


def test_sqlite_database_or_disk_is_full_is_storage_full(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite3", isolation_level=None)
    conn.execute("CREATE TABLE t (x)")
    conn.execute("PRAGMA max_page_count = 3")  # SQLite's own way to make its disk "full"
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("INSERT INTO t VALUES (randomblob(100000))")
    assert classify(raised.value) is StorageFull


def test_other_sqlite_errors_name_no_condition(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "x.sqlite3")
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("SELECT * FROM no_such_table")
    assert classify(raised.value) is None
    assert classify(ValueError("not a store error")) is None
