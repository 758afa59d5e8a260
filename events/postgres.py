"""eventsourcing's PostgreSQL application recorder, with the ledger's leaves in the same
transaction.

eventsourcing 9.5.6's ``insert_events`` catches an exception raised after its INSERT inside the
transaction block, so the rows would commit anyway. This recorder owns the whole transaction
instead: any exception while building leaves rolls everything back, COMMIT is only sent once
every row is in place, and the trigger ``stored_events_require_leaf`` refuses an event row that
arrives without its leaf.

The transaction is pipelined, so an append costs two round trips, as eventsourcing's own
(which takes its lock, notifies and inserts in one, and commits in another): the first takes
the writer lock and reads the tip, the data keys and any heads the cache lacks; the second
inserts leaves, links and events (one statement each) and commits.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import psycopg
import psycopg_pool
from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from events.db import Database, _PgCursor, drop_lost_connections, settle
from events.guards import install_guards
from events.heads import UPSERT as HEADS_UPSERT
from events.heads import head_rows, open_heads
from events.log import leaf_feed
from events.schema import create_tables
from events.store import (
    AfterAppend,
    Appended,
    HeadCache,
    build_leaves,
    commit_to,
    key_names,
    start_position,
)
from events.store_errors import (
    OutcomeUnknown,
    StoreBusy,
    StoreUnavailable,
    classify,
    connection_lost,
)
from events.tiles import FRONTIER_AT_TIP, UPSERT, build_tiles, extend, frontier_at, open_tiles
from verify.merkle import leaf_hash

# Parameters are sent in binary (%b): the text form quotes and escapes every value in Python.
# Up to ROWS_AS_VALUES rows an append sends scalars (one VALUES list, one prepared statement per
# row count): psycopg dumps an array in Python, element by element, and for the one-event
# appends of a busy server (each read of a chart records one) that was most of the append's
# time in psycopg. Bigger appends send one array per column, a statement whatever the count.
ROWS_AS_VALUES = 16
# Each subject's last link, found from the end of its index: a subject's links grow with every
# event about it (a clinician's with every chart read), so reading them all would make each
# append slower than the last. It is in ledger_links_recent if the subject has any there, else
# in mid, else in main: this writer puts none in recent or mid, but a store may hold some
# (LEDGER_FORMAT.md §11).
HEADS = (
    "SELECT s.subject, h.seq, h.position FROM unnest(%b::text[]) AS s(subject) "
    "CROSS JOIN LATERAL ("
    "(SELECT seq, position FROM ledger_links_recent WHERE subject = s.subject "
    "ORDER BY seq DESC LIMIT 1) UNION ALL "
    "(SELECT seq, position FROM ledger_links_mid WHERE subject = s.subject "
    "ORDER BY seq DESC LIMIT 1) UNION ALL "
    "(SELECT seq, position FROM ledger_links_main WHERE subject = s.subject "
    "ORDER BY seq DESC LIMIT 1) ORDER BY seq DESC LIMIT 1) h"
)
LEAF_COLUMNS = ("ledger_leaves (position, stream, version, leaf)", "bigint uuid bigint bytea")
# Straight into main's index: on PostgreSQL an index entry costs a small WAL record, not a whole
# page as on SQLite, so staging links in recent and merging them later only added work
# (bench/append.py pg-100: ledger / plain 1.06-1.12 direct, 0.91-0.92 staged).
LINK_COLUMNS = ("ledger_links_main (subject, seq, position)", "text bigint bigint")
# How long an append keeps trying while the database is away or a lock is held: a restart
# of PostgreSQL took 2.4 s (issue 23). Past it the client hears 503 and tries again itself.
RETRY_FOR = 8.0
FIRST_WAIT, LONGEST_WAIT = 0.05, 1.0


def tip_and_keys(names: list[str]) -> tuple[str, list[Any]]:
    """The statement and parameters reading the tip, and how many of ``names`` data keys are
    still there."""
    if len(names) <= ROWS_AS_VALUES:
        return _tip_and_keys_sql(len(names)), list(names)
    return _tip_and_keys_sql(None), [names]


def insert(
    columns: tuple[str, str], rows: Sequence[Sequence[Any]], returning: str = ""
) -> tuple[str, list[Any]]:
    """The statement and parameters inserting ``rows`` into ``columns`` (the table and its
    column names, then their types)."""
    if len(rows) <= ROWS_AS_VALUES:
        return _insert_sql(columns, len(rows), returning), [v for row in rows for v in row]
    return _insert_sql(columns, None, returning), [list(c) for c in zip(*rows, strict=True)]


@functools.lru_cache(maxsize=256)
def _tip_and_keys_sql(count: int | None) -> str:
    wanted = "= ANY(%b)" if count is None else f"IN ({', '.join(['%b'] * count)})"
    return (
        "SELECT (SELECT MAX(position) FROM ledger_leaves), "
        f"(SELECT COUNT(*) FROM ledger_data_keys WHERE name {wanted})"
    )


@functools.lru_cache(maxsize=256)
def _insert_sql(columns: tuple[str, str], count: int | None, returning: str) -> str:
    """``count`` rows of scalars, or (None) one array per column."""
    table, types = columns[0], columns[1].split()
    if count is None:
        arrays = ", ".join(f"%b::{t}[]" for t in types)
        return f"INSERT INTO {table} SELECT * FROM unnest({arrays}){returning}"
    row = f"({', '.join(['%b'] * len(types))})"
    return f"INSERT INTO {table} VALUES {', '.join([row] * count)}{returning}"


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        # eventsourcing's PostgreSQL factory would name it "<app>_events"; the ledger format
        # (and the verifier) name it stored_events on both stores.
        super().__init__(datastore, events_table_name="stored_events")
        self.head_cache = HeadCache()
        self.leaf_feed = leaf_feed(self.datastore)
        schema = Identifier(self.datastore.schema)
        # eventsourcing's table plus the event's log position (see events/sqlite.py).
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.stored_events ("
            "originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
            "state bytea, notification_id bigserial, position bigint NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(schema=schema)
        self.event_columns = (
            f'"{self.datastore.schema}".stored_events '
            "(originator_id, originator_version, topic, state, position)",
            "uuid bigint text bytea bigint",
        )
        # The writer lock as eventsourcing takes it. Its lock timeout, and the schema the
        # ledger's unqualified table names resolve in, are set once on each connection
        # (events.db.settle) rather than in every append: each statement in the pipeline costs
        # the append its own trip through psycopg. Nothing here listens for eventsourcing's
        # NOTIFY (views poll, as on SQLite), so it is not sent.
        self.lock_statement = SQL("LOCK TABLE {0}.stored_events IN EXCLUSIVE MODE").format(schema)
        self._outcome_lock = SQL("LOCK TABLE {0}.stored_events IN SHARE MODE").format(schema)
        self._find_own_sql = (
            "SELECT e.originator_id, e.originator_version, e.state, e.notification_id "
            f'FROM "{self.datastore.schema}".stored_events e '
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS w(id, version) "
            "ON e.originator_id = w.id AND e.originator_version = w.version"
        )

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        """eventsourcing 9.5.6's select_events, with its SQL text made once per shape: it
        composes the statement anew on each call, and psycopg renders the composition to
        text each time, which cost a short read (an aggregate loaded for a request) more
        than its round trip."""
        params = [originator_id, *(v for v in (gt, lte, limit) if v is not None)]
        statement = self._select_events_sql(
            gt is not None, lte is not None, desc, limit is not None
        )
        try:
            with (
                self.datastore.get_connection() as conn,
                conn.cursor(row_factory=tuple_row) as c,
            ):
                c.execute(statement, params, prepare=True)
                return [
                    StoredEvent(
                        originator_id=row[0], originator_version=row[1], topic=row[2], state=row[3]
                    )
                    for row in c.fetchall()
                ]
        except (InterfaceError, OperationalError) as e:
            if connection_lost(e):  # the others the server dropped with it, before the retry
                drop_lost_connections(self.datastore)
            raise

    @functools.lru_cache(maxsize=32)  # noqa: B019 (one recorder per store, kept for its life)
    def _select_events_sql(self, gt: bool, lte: bool, desc: bool, limit: bool) -> str:
        return (
            "SELECT originator_id, originator_version, topic, state "
            f'FROM "{self.datastore.schema}".stored_events WHERE originator_id = %s'
            + (" AND originator_version > %s" if gt else "")
            + (" AND originator_version <= %s" if lte else "")
            + (" ORDER BY originator_version DESC" if desc else " ORDER BY originator_version ASC")
            + (" LIMIT %s" if limit else "")
        )

    def create_table(self) -> None:
        db = Database(self.datastore)
        with db.setting_up():
            with self.datastore.transaction(commit=True) as curs:
                curs.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema))
                )
            super().create_table()
            with db.write(lock=False) as c:
                create_tables(c, "postgres")
                install_guards(c, "postgres", self.datastore.schema)
            open_tiles(db)  # a store made before tiles gets them, once
            open_heads(db)  # and a store made before ledger_heads its rows

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        after_append: AfterAppend | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        """Append, trying again while the database is away or a lock is held, for up to
        ``RETRY_FOR`` seconds.

        A connection lost with COMMIT in flight leaves the outcome unknown: PostgreSQL may have
        committed before the connection went. Appending again would then insert the same
        versions a second time and fail as a conflict (a 409 for a write that was kept), so
        before the next attempt this append looks for its own events, rows with its streams,
        versions and the very sealed bytes it sent (fresh salt and nonce in each, so no other
        write has them): all there, it committed; none there, it did not and is tried again.
        Another writer's event at one of its versions is a real conflict (IntegrityError).
        """
        if not stored_events:
            return []
        give_up, wait = time.monotonic() + RETRY_FOR, FIRST_WAIT
        unsure = False  # whether an earlier attempt may have committed
        while True:
            try:
                if unsure:
                    ids = self._committed_already(stored_events)
                    if ids is not None:
                        return ids  # the head cache and leaf feed catch up on their own
                    unsure = False
                return self._attempt(stored_events, after_append)
            except (OperationalError, InterfaceError) as e:
                condition = classify(e)
                if condition is None:
                    raise
                if condition not in (StoreUnavailable, StoreBusy):
                    raise condition(str(e)) from e
                if connection_lost(e):
                    unsure = True
                    drop_lost_connections(self.datastore)
                if time.monotonic() + wait > give_up:
                    if unsure:
                        raise OutcomeUnknown(
                            "the connection was lost while the write committed"
                        ) from e
                    raise condition(str(e)) from e
            time.sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT)

    def _attempt(
        self, stored_events: Sequence[StoredEvent], after_append: AfterAppend | None
    ) -> list[int]:
        try:
            with self.datastore.get_connection() as conn:
                settle(conn, self.datastore)
                try:
                    ids, appended = self._append(conn, stored_events, after_append)
                except psycopg.Error:
                    # After a failed pipeline, psycopg's cache of prepared statements and the
                    # server's can disagree: the next read on this connection then failed
                    # with "prepared statement _pg3_N does not exist" (a 500 when two failed
                    # logins raced). Closed, the pool discards it and the next use starts clean.
                    conn.close()
                    raise
        except psycopg.IntegrityError as e:
            raise IntegrityError(str(e)) from e
        except psycopg.errors.LockNotAvailable as e:
            raise OperationalError(str(e)) from e
        except psycopg_pool.PoolTimeout as e:  # no connection to be had: tried again
            raise OperationalError(str(e)) from e
        commit_to(self.head_cache, appended)
        self.leaf_feed.add(appended.start, appended.leaves)
        return ids

    def _committed_already(self, stored_events: Sequence[StoredEvent]) -> list[int] | None:
        """The notification ids of ``stored_events`` if they are all in the store as sent,
        None if none of them is; IntegrityError if another writer's event holds a version."""
        sent = {(_uuid(s.originator_id), s.originator_version): s.state for s in stored_events}
        with self.datastore.get_connection() as conn:
            settle(conn, self.datastore)
            with conn.transaction(), conn.cursor(row_factory=tuple_row) as c:
                # The lost connection's backend may still be ending, its COMMIT not yet decided:
                # a SHARE lock waits for its EXCLUSIVE one, so what is read is final.
                c.execute(self._outcome_lock)
                c.execute(self._find_own_sql, ([k[0] for k in sent], [k[1] for k in sent]))
                found = {(row[0], row[1]): (bytes(row[2]), row[3]) for row in c.fetchall()}
        if not found:
            return None
        if found.keys() != sent.keys() or any(found[k][0] != sent[k] for k in sent):
            raise IntegrityError("another writer's event holds a version this append wrote")
        return [found[_uuid(s.originator_id), s.originator_version][1] for s in stored_events]

    def _append(
        self,
        conn: psycopg.Connection[Any],
        events: Sequence[Any],
        after_append: AfterAppend | None,
    ) -> tuple[list[int], Appended]:
        names = key_names(events)
        subjects = {s for event in events for s in event.subjects}
        # Heads the cache will not have, read in the first round trip on the guess that no
        # other writer appended since our last commit (if one did, the rest are read after).
        guessed = sorted(self.head_cache.likely_missing(subjects))
        with (
            conn.pipeline() as pipeline,
            conn.cursor(row_factory=tuple_row) as curs,
            conn.cursor(row_factory=tuple_row) as probe,
            conn.cursor(row_factory=tuple_row) as heads_read,
            conn.cursor(row_factory=tuple_row) as inserted,
            conn.cursor(row_factory=tuple_row) as newest_tiles,
            conn.cursor(row_factory=tuple_row) as heads_written,
            conn.cursor(row_factory=tuple_row) as signing,
        ):
            # The connection is in autocommit mode: BEGIN and COMMIT are ours to send, so
            # nothing commits unless every step below succeeded.
            curs.execute("BEGIN")
            try:
                curs.execute(self.lock_statement, prepare=True)
                probe.execute(*tip_and_keys(names), prepare=True)
                newest_tiles.execute(FRONTIER_AT_TIP, prepare=True)
                if guessed:
                    heads_read.execute(HEADS, (guessed,), prepare=True)
                row = probe.fetchone()  # the first round trip
                assert row is not None
                start = start_position(row[0], row[1], names)
                heads = _heads(heads_read) if guessed else {}
                heads.update(self.head_cache.lookup(start, subjects))
                missing = sorted(subjects - heads.keys() - set(guessed))
                if missing:  # another writer appended, so the cache was dropped
                    heads_read.execute(HEADS, (missing,), prepare=True)
                    heads.update(_heads(heads_read))
                appended = build_leaves(events, start, heads, lambda oid: oid)
                curs.execute(*insert(LEAF_COLUMNS, appended.leaf_rows), prepare=True)
                frontier = frontier_at(newest_tiles.fetchall(), start)
                if frontier is None:  # a store made before tiles (rare: built at open)
                    frontier = build_tiles(_PgCursor(curs), start)
                hashes = [leaf_hash(leaf) for leaf, _ in appended.leaves]
                tiles = extend(frontier, start, hashes)
                curs.executemany(UPSERT.replace("?", "%s"), tiles)
                if appended.link_rows:
                    curs.execute(*insert(LINK_COLUMNS, appended.link_rows), prepare=True)
                # A cursor of its own: its results are never read.
                heads_written.executemany(
                    HEADS_UPSERT.replace("?", "%s"), head_rows(appended.heads)
                )
                rows = [
                    (s.originator_id, s.originator_version, s.topic, s.state, position)
                    for s, position in zip(events, appended.positions, strict=True)
                ]
                returning = " RETURNING notification_id"
                inserted.execute(*insert(self.event_columns, rows, returning), prepare=True)
                if after_append is not None:
                    # A cursor of its own too: in a pipeline, a read through a cursor that has
                    # just sent writes (the leaves, tiles and links above) could be handed a
                    # write's result ("the last operation didn't produce records").
                    after_append(_PgCursor(signing), appended.positions)
                # COMMIT is queued only now, after every statement and all the Python work
                # between them succeeded; the server skips it if any statement before it
                # failed (a pipeline stops at its first error), leaving the transaction to
                # roll back. A writer killed with COMMIT in flight leaves a whole append,
                # which the server may commit: complete, under the lock, and so valid.
                curs.execute("COMMIT")
                pipeline.sync()  # the second round trip: raises the first error, if any
            except BaseException:
                _rollback(conn, pipeline)
                raise
            ids = [row[0] for row in inserted.fetchall()]
        return ids, appended


def _uuid(originator_id: UUID | str) -> UUID:
    return originator_id if isinstance(originator_id, UUID) else UUID(str(originator_id))


def _heads(cursor: Any) -> dict[str, tuple[int, int]]:
    return {subject: (seq, position) for subject, seq, position in cursor.fetchall()}


def _rollback(conn: psycopg.Connection[Any], pipeline: psycopg.Pipeline) -> None:
    """End the failed transaction, so the connection goes back to the pool idle.

    After an error the server skips everything up to the next sync, a ROLLBACK included, so
    it may take a second one.
    """
    for _ in range(2):
        if conn.closed or conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            return
        try:
            conn.execute("ROLLBACK")
            pipeline.sync()
        except psycopg.Error:
            pass  # the error on its way up says what went wrong; the pool resets the rest
