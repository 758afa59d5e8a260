"""One small SQL interface over eventsourcing's SQLite and PostgreSQL datastores.

Ledger SQL is written once with ``?`` placeholders and tuple rows; the PostgreSQL side rewrites
the placeholders. Writes take the store's writer lock at BEGIN, so positions are handed out in
commit order.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from typing import Any, Literal, Protocol, TypeVar

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteConnection, SQLiteDatastore
from psycopg import IsolationLevel
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from events.store_errors import connection_lost
from events.writer_lock import writer_lock

Dialect = Literal["sqlite", "postgres"]
# The advisory-lock space ("CHLG") in which a schema's set-up is serialised (Database.setting_up).
SETUP_LOCK_SPACE = 0x43484C47
Statement = tuple[str, Sequence[Any]]  # SQL with ? placeholders, and its parameters

# A ledger append dirties about twice the pages of a plain event (its leaf, and a links-index
# page per subject), and mostly the same hot index pages over and over. Checkpointing the WAL
# every 10,000 pages instead of SQLite's 1,000 copies each hot page into the database once
# per checkpoint rather than ten times. Durability is untouched: every commit still syncs the
# WAL as before (synchronous is left as it is); only the WAL file grows, to about 40 MB.
WAL_AUTOCHECKPOINT_PAGES = 10_000
# The WAL file keeps its largest size once there: no journal_size_limit, which cut it back at
# every restart and cost single-event appends about a fifth of their rate in bench/append.py
# (sqlite-1 0.57-0.59 of plain against 0.66-0.81), growing the file again each time. A bulk
# write that must not leave it behind empties it itself (``Database.shrink_wal``).
_tuned: weakref.WeakSet[Any] = weakref.WeakSet()  # eventsourcing connections, tuned once


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchone(self) -> tuple[Any, ...] | None: ...
    def fetchall(self) -> list[tuple[Any, ...]]: ...


class _PgCursor:
    """A psycopg cursor that takes ``?`` placeholders."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        # No params means no placeholder parsing, so DDL may contain a literal %.
        return self._cursor.execute(sql.replace("?", "%s") if params else sql, params or None)

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._cursor.fetchall()


class Database:
    """Transactions on the ledger's store, whichever it is."""

    def __init__(self, datastore: SQLiteDatastore | PostgresDatastore) -> None:
        self.datastore = datastore
        self.dialect: Dialect = "sqlite" if isinstance(datastore, SQLiteDatastore) else "postgres"

    @property
    def schema(self) -> str:
        return getattr(self.datastore, "schema", "main")

    @contextmanager
    def write(self, lock: bool = True) -> Iterator[Cursor]:
        """A transaction holding the writer lock (when ``lock``): commit on success."""
        if self.dialect == "sqlite":
            with self._sqlite(writer=True, begin="BEGIN IMMEDIATE" if lock else "BEGIN") as c:
                yield c
        else:
            with self._postgres(lock=lock) as c:
                yield c

    @contextmanager
    def setting_up(self) -> Iterator[None]:
        """Hold the store's set-up lock while tables are created or altered.

        PostgreSQL's ``CREATE ... IF NOT EXISTS`` is not safe against itself: two server workers
        starting at once both find a table missing, and one fails ("duplicate key value violates
        unique constraint pg_type_typname_nsp_index", "tuple concurrently updated"), so a worker
        dies at start. A session advisory lock per schema serialises them; the second finds the
        tables made. SQLite's own database lock already serialises its DDL.
        """
        if self.dialect == "sqlite":
            yield
            return
        with self.datastore.get_connection() as conn:
            key = (SETUP_LOCK_SPACE, self.schema)
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one statement that only reads, run on its own, as its own snapshot.

        Cheaper than ``read`` for a single statement: on PostgreSQL it is one round trip,
        where a transaction adds BEGIN and ROLLBACK; on SQLite it is one call. Hot paths (an
        API request's checks and reads) use it; several statements that must agree use ``read``.
        """
        if self.dialect == "sqlite":
            assert isinstance(self.datastore, SQLiteDatastore)
            with self.datastore.get_connection(commit=False) as conn:
                return conn._sqlite_conn.execute(sql, params).fetchall()
        return again_if_lost(self.datastore, lambda: self._pg_query(sql, params))

    def _pg_query(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        assert isinstance(self.datastore, PostgresDatastore)
        with self.datastore.get_connection() as conn:
            settle(conn, self.datastore)  # autocommit: the statement is its own transaction
            with conn.cursor(row_factory=tuple_row) as cursor:
                found = _PgCursor(cursor)
                found.execute(sql, params)
                return found.fetchall()

    def ping(self, timeout: float) -> None:
        """Raise unless the store answers a trivial read within about ``timeout`` seconds (a
        readiness probe's question, which must not wait for the pool's full timeout)."""
        if self.dialect == "sqlite":
            self.query("SELECT MAX(position) FROM ledger_leaves")
            return
        assert isinstance(self.datastore, PostgresDatastore)
        with self.datastore.pool.connection(timeout=timeout) as conn:
            conn.execute("SELECT 1")

    def queries(self, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
        """The rows of each reading statement, run in order, each as its own snapshot (as
        ``query`` runs one): on PostgreSQL all in one round trip (a pipeline), on SQLite one
        after another. For a request's independent reads, each seeing at least what the one
        before it saw."""
        if self.dialect == "sqlite" or len(statements) == 1:
            return [self.query(sql, params) for sql, params in statements]
        return again_if_lost(self.datastore, lambda: self._pg_queries(statements))

    def _pg_queries(self, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
        assert isinstance(self.datastore, PostgresDatastore)
        with self.datastore.get_connection() as conn, ExitStack() as cursors_closed:
            settle(conn, self.datastore)
            cursors = [
                _PgCursor(cursors_closed.enter_context(conn.cursor(row_factory=tuple_row)))
                for _ in statements
            ]
            with conn.pipeline():
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params)
            return [cursor.fetchall() for cursor in cursors]

    def shrink_wal(self) -> bool:
        """SQLite: copy the whole WAL back into the database and cut the file to nothing, as
        after a bulk write (a large import), which would otherwise leave up to 40 MB of WAL
        until the next automatic checkpoint. Best effort: a reader still using the WAL leaves
        it as it is (the next automatic checkpoint takes it). True when the WAL was emptied;
        always True on PostgreSQL, which has no such file of its own."""
        if self.dialect != "sqlite":
            return True
        assert isinstance(self.datastore, SQLiteDatastore)
        lock = writer_lock(self.datastore)
        with lock.held():  # no writer of this process mid-transaction on the connection
            kept = lock.connection()
            if kept is None:
                with self.datastore.get_connection(commit=True) as conn:
                    return _truncate_wal(conn._sqlite_conn)
            return _truncate_wal(kept._sqlite_conn)

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        """A read-only transaction: one consistent snapshot."""
        if self.dialect == "sqlite":
            with self._sqlite(writer=False, begin="BEGIN") as c:
                yield c
        else:
            with self._postgres(lock=False, read_only=True) as c:
                yield c

    @contextmanager
    def _sqlite(self, writer: bool, begin: str) -> Iterator[Cursor]:
        assert isinstance(self.datastore, SQLiteDatastore)
        if not writer:
            with self.datastore.get_connection(commit=False) as conn:
                yield from _sqlite_transaction(conn._sqlite_conn, begin, commit=False)
            return
        lock = writer_lock(self.datastore)
        with lock.held():
            kept = lock.connection()
            if kept is None:
                with self.datastore.get_connection(commit=True) as conn:
                    yield from _sqlite_writes(conn, begin)
                return
            try:
                yield from _sqlite_writes(kept, begin)
            except sqlite3.Error as e:
                if not isinstance(e, sqlite3.IntegrityError):  # a refusal leaves it sound
                    lock.drop_connection()  # whatever else broke may have broken it
                raise

    @contextmanager
    def _postgres(self, lock: bool, read_only: bool = False) -> Iterator[Cursor]:
        """A transaction on a pooled connection; if the connection turns out lost before the
        transaction started (a connection the server dropped while it sat in the pool), once
        more on another."""
        for attempt in (1, 2):
            stack = ExitStack()
            try:
                cursor = stack.enter_context(self._pg_transaction(lock, read_only))
            except Exception as e:
                if attempt == 2 or not connection_lost(e):
                    raise
                drop_lost_connections(self.datastore)
                continue
            with stack:
                yield cursor
            return

    @contextmanager
    def _pg_transaction(self, lock: bool, read_only: bool) -> Iterator[Cursor]:
        assert isinstance(self.datastore, PostgresDatastore)
        with self.datastore.get_connection() as conn:
            settle(conn, self.datastore)
            if read_only:
                # One snapshot for every statement (READ COMMITTED gives each its own), and
                # ended by COMMIT: psycopg forgets a connection's prepared statements at every
                # ROLLBACK (and tells the server to drop them), which would cost the next
                # append on this connection a fresh parse and plan of each of its statements.
                conn.isolation_level, conn.read_only = IsolationLevel.REPEATABLE_READ, True
            try:
                with conn.transaction(), conn.cursor(row_factory=tuple_row) as c:
                    if lock:
                        lock_pg_writer(c, self.datastore)
                    yield _PgCursor(c)
            finally:
                if read_only:
                    conn.isolation_level = conn.read_only = None


def _truncate_wal(raw: sqlite3.Connection) -> bool:
    """Checkpoint and truncate the WAL without waiting: TRUNCATE would wait out the busy
    timeout (a minute) for a reader on an older snapshot, holding the writer lock all along."""
    (timeout,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        row = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(timeout)}")
    return row is not None and row[0] == 0


def _sqlite_writes(conn: SQLiteConnection, begin: str) -> Iterator[Cursor]:
    raw = conn._sqlite_conn
    if conn not in _tuned:
        raw.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
        _tuned.add(conn)
    yield from _sqlite_transaction(raw, begin, commit=True)


def _sqlite_transaction(raw: sqlite3.Connection, begin: str, commit: bool) -> Iterator[Cursor]:
    """The body of a transaction on ``raw``: rolled back unless ``commit`` and it succeeds."""
    cursor = raw.cursor()
    cursor.execute(begin)
    try:
        yield cursor
    except BaseException:
        raw.rollback()
        raise
    if commit:
        raw.commit()
    else:
        raw.rollback()


T = TypeVar("T")


def drop_lost_connections(datastore: Any) -> None:
    """After a lost connection: check the pool's idle connections (one empty statement each)
    so those the server dropped with it are discarded now, rather than each failing a request
    of its own. A PostgreSQL restart, or a backend terminated, drops them all at once."""
    pool = getattr(datastore, "pool", None)
    if pool is not None:
        with suppress(Exception):  # the database is still away: the next use will say so
            pool.check()


def again_if_lost(datastore: Any, read: Callable[[], T]) -> T:
    """``read`` (which only reads), once more if its connection turned out lost."""
    try:
        return read()
    except Exception as e:
        if not connection_lost(e):
            raise
    drop_lost_connections(datastore)
    return read()


_settled: weakref.WeakSet[Any] = weakref.WeakSet()  # PostgreSQL connections, settled once


def settle(conn: Any, datastore: PostgresDatastore) -> None:
    """The session settings every ledger statement relies on, sent once per connection: the
    schema its unqualified table names resolve in, and the writer lock's timeout. Sent outside
    any transaction (the pool's connections are in autocommit mode), they outlive it; a
    setting per transaction (SET LOCAL) would cost every transaction a round trip."""
    if conn not in _settled:
        conn.execute(
            SQL("SET lock_timeout = '{0}s'; SET search_path TO {1}").format(
                datastore.lock_timeout, Identifier(datastore.schema)
            )
        )
        _settled.add(conn)


def lock_pg_writer(cursor: Any, datastore: PostgresDatastore) -> None:
    """eventsourcing's writer lock: serialises inserts so positions follow commit order."""
    cursor.execute(
        SQL("LOCK TABLE {0}.{1} IN EXCLUSIVE MODE").format(
            Identifier(datastore.schema), Identifier("stored_events")
        )
    )
