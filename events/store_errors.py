"""What went wrong with the store, in words a client can act on: the database is away, its
disk is full, or a lock could not be had in time.

The drivers say these things in their own ways (sqlite3's "database or disk is full", an
``OSError`` with ENOSPC, PostgreSQL's SQLSTATE 53100; a refused or dropped connection; SQLite's
"database is locked" after its busy timeout, PostgreSQL's 55P03), and eventsourcing wraps some of
them again. ``classify`` reads a whole chain of causes and names the condition, so the store
layers can raise one typed error and the HTTP edge (``api/errors.py``) can answer 503
instead of a 500 that leaves the client guessing whether its write was kept.
"""

from __future__ import annotations

import errno
import sqlite3

import psycopg
import psycopg_pool
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError


class StoreError(Exception):
    """The store could not do what was asked, for a reason outside the request itself."""

    retry_after = 1  # seconds a client should wait before trying again


class StoreUnavailable(StoreError):
    """The database cannot be reached, or the connection to it was lost."""


class StorageFull(StoreError):
    """The store's disk is full: nothing more can be written until space is freed."""

    retry_after = 30


class StoreBusy(StoreError):
    """A lock the write needs was held by someone else for longer than the store waits."""


class OutcomeUnknown(StoreUnavailable):
    """The connection was lost while a write committed, and it could not be looked up
    afterwards: the write may or may not have been kept. Repeat it with the same
    Idempotency-Key to find out without writing it twice."""


# Where the drivers' errors (and eventsourcing's wrappers of them) come from: what ``classify``
# may find a store condition in.
DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    sqlite3.Error,
    psycopg.Error,
    psycopg_pool.PoolTimeout,
    PersistenceError,
    OSError,
)

# PostgreSQL SQLSTATEs (Appendix A): class 53 insufficient resources, 55P03 lock not available,
# 57P0x the server going down, class 08 the connection.
_PG_FULL = {"53100"}  # disk_full
_PG_BUSY = {"55P03", "40P01"}  # lock_not_available (lock_timeout), deadlock_detected
_PG_GONE_PREFIXES = ("08", "57P")


def classify(error: BaseException) -> type[StoreError] | None:
    """The store condition behind ``error`` (looking through its causes), or None."""
    for link in _chain(error):
        found = _one(link)
        if found is not None:
            return found
    return None


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and what it was raised from, or during, outermost first."""
    links: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in links):
        links.append(current)
        current = current.__cause__ or current.__context__
    return links


def _one(error: BaseException) -> type[StoreError] | None:
    if isinstance(error, StoreError):
        return type(error)
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return StorageFull
    if isinstance(error, sqlite3.Error):
        return _sqlite(error)
    if isinstance(error, psycopg.Error):
        return _postgres(error)
    if isinstance(error, psycopg_pool.PoolTimeout):
        return StoreUnavailable  # no connection could be had (or made) in time
    return None


def _sqlite(error: sqlite3.Error) -> type[StoreError] | None:
    code = getattr(error, "sqlite_errorcode", None)
    message = str(error).lower()
    if code == sqlite3.SQLITE_FULL or "database or disk is full" in message:
        return StorageFull
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "database is locked" in message:
        return StoreBusy
    if isinstance(error, sqlite3.OperationalError) and "disk i/o error" in message:
        return StoreUnavailable
    return None


def _postgres(error: psycopg.Error) -> type[StoreError] | None:
    state = error.sqlstate or ""
    if state in _PG_FULL:
        return StorageFull
    if state in _PG_BUSY:
        return StoreBusy
    if state.startswith(_PG_GONE_PREFIXES):
        return StoreUnavailable
    if not state and isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnavailable  # no SQLSTATE: libpq lost or never had the connection
    return None


def connection_lost(error: BaseException) -> bool:
    """Whether ``error`` means the connection failed (so a commit in flight may or may not
    have happened), as opposed to the server refusing a statement."""
    links = _chain(error)
    for link in links:
        if isinstance(link, psycopg.Error):
            return _postgres(link) is StoreUnavailable
    # eventsourcing's own, with no driver error behind it: assume the worst (a lookup, a retry)
    return isinstance(links[-1], OperationalError | InterfaceError)
