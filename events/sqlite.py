"""eventsourcing's SQLite application recorder, with the ledger's leaves in the same transaction."""

from __future__ import annotations

import sqlite3
import types
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, InterfaceError, StoredEvent
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
)

from events.config import pool_size
from events.db import Database
from events.guards import install_guards
from events.heads import open_heads
from events.log import leaf_feed
from events.schema import create_tables
from events.store import AfterAppend, HeadCache, append_leaves, commit_to
from events.store_errors import classify
from events.tiles import open_tiles

INSERT_EVENT = (
    "INSERT INTO stored_events (originator_id, originator_version, topic, state, position) "
    "VALUES (?, ?, ?, ?, ?)"
)


def _hex(originator_id: Any) -> str:
    # eventsourcing keeps SQLite originator ids as 32 hex digits; leaves use the same form.
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


# eventsourcing opens its connections with cached_statements=True, a cache of one statement,
# so each of an append's six statements would be compiled again on every append (the event
# INSERT with its trigger the dearest). Enough for every statement the ledger runs.
STATEMENT_CACHE = 64


def _create_connection(pool: SQLiteConnectionPool) -> SQLiteConnection:
    """eventsourcing 9.5.6's SQLiteConnectionPool._create_connection, with a statement cache."""
    try:
        c = sqlite3.connect(
            database=pool.db_name,
            uri=True,
            check_same_thread=False,
            isolation_level=None,
            cached_statements=STATEMENT_CACHE,
            timeout=pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
        )
    except (sqlite3.Error, TypeError) as e:
        raise InterfaceError(e) from e
    if not pool.is_sqlite_memory_mode and not pool.is_journal_mode_wal:
        cursor = c.cursor()
        cursor.execute("PRAGMA journal_mode;")
        if cursor.fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode=WAL;")
            pool.journal_mode_was_changed_to_wal = True
        pool.is_journal_mode_wal = True
    c.row_factory = sqlite3.Row
    return SQLiteConnection(sqlite_conn=c, max_age=pool.max_age)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pool = self.datastore.pool
        pool._create_connection = types.MethodType(_create_connection, pool)  # type: ignore[method-assign]
        pool.pool_size = pool.max_overflow = pool_size("sqlite")  # eventsourcing keeps 5
        self.head_cache = HeadCache()
        self.leaf_feed = leaf_feed(self.datastore)

    def construct_create_table_statements(self) -> list[str]:
        # eventsourcing's table plus the event's log position, so the database can check the
        # leaf by its primary key instead of keeping a second index over random stream ids.
        return [
            f"CREATE TABLE IF NOT EXISTS {self.events_table_name} ("
            "originator_id TEXT, originator_version INTEGER, topic TEXT, state BLOB, "
            "position INTEGER NOT NULL, PRIMARY KEY (originator_id, originator_version))"
        ]

    def create_table(self) -> None:
        super().create_table()
        db = Database(self.datastore)
        with db.write() as c:
            create_tables(c, "sqlite")
            install_guards(c, "sqlite", "main")
        open_tiles(db)  # a store made before tiles gets them, once
        open_heads(db)  # and a store made before ledger_heads its rows

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        after_append: AfterAppend | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        db = Database(self.datastore)
        try:
            # BEGIN IMMEDIATE is the writer lock: no other writer can read a stale tip.
            with db.write() as c:
                appended = append_leaves(c, stored_events, _hex, self.head_cache)
                # The leaf rows already hold each stream as the column spells it.
                rows = [
                    (leaf[1], s.originator_version, s.topic, s.state, leaf[0])
                    for s, leaf in zip(stored_events, appended.leaf_rows, strict=True)
                ]
                if len(rows) == 1:
                    c.execute(INSERT_EVENT, rows[0])
                    ids = [c.lastrowid]
                else:
                    c.executemany(INSERT_EVENT, rows)
                    # Under the writer lock nothing else inserts, and a rowid table hands out
                    # MAX(rowid) + 1, so the rows just inserted have consecutive rowids.
                    c.execute("SELECT last_insert_rowid()")
                    (last,) = c.fetchone()
                    ids = list(range(last - len(rows) + 1, last + 1))
                if after_append is not None:
                    after_append(c, appended.positions)
        except sqlite3.IntegrityError as e:
            raise IntegrityError(e) from e
        except sqlite3.Error as e:
            # A full disk, or the lock still held when the busy timeout ran out: the
            # transaction rolled back, so nothing of it was kept. Said as such (503).
            condition = classify(e)
            if condition is None:
                raise
            raise condition(str(e)) from e
        commit_to(self.head_cache, appended)
        self.leaf_feed.add(appended.start, appended.leaves)
        return ids
