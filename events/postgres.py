"""eventsourcing's PostgreSQL application recorder, with the ledger's leaves in the same
transaction.

eventsourcing 9.5.6's ``insert_events`` catches an exception raised after its INSERT inside the
transaction block, so the rows would commit anyway. This recorder owns the whole transaction
instead: any exception while building leaves rolls everything back, and the trigger
``stored_events_require_leaf`` refuses an event row that arrives without its leaf.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import retry
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from events.db import Database, _PgCursor, lock_pg_writer
from events.guards import install_guards
from events.schema import create_tables
from events.store import AfterAppend, HeadCache, append_leaves, commit_to


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "stored_events") -> None:
        # eventsourcing's PostgreSQL factory would name it "<app>_events"; the ledger format
        # (and the verifier) name it stored_events on both stores.
        super().__init__(datastore, events_table_name="stored_events")
        self.head_cache = HeadCache()
        # eventsourcing's table plus the event's log position (see events/sqlite.py).
        self.sql_create_statements[self.create_table_statement_index] = SQL(
            "CREATE TABLE IF NOT EXISTS {schema}.stored_events ("
            "originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, "
            "state bytea, notification_id bigserial, position bigint NOT NULL, "
            "PRIMARY KEY (originator_id, originator_version))"
        ).format(schema=Identifier(self.datastore.schema))
        self.insert_with_positions = SQL(
            "INSERT INTO {schema}.stored_events "
            "(originator_id, originator_version, topic, state, position) "
            "SELECT * FROM unnest(%s::uuid[], %s::bigint[], %s::text[], %s::bytea[], "
            "%s::bigint[]) RETURNING notification_id"
        ).format(schema=Identifier(self.datastore.schema))

    def create_table(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.datastore.schema))
            )
        super().create_table()
        db = Database(self.datastore)
        with db.write(lock=False) as c:
            create_tables(c, "postgres")
            install_guards(c, "postgres", self.datastore.schema)

    @retry((OperationalError,), max_attempts=10, wait=0.2)
    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        after_append: AfterAppend | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        try:
            with (
                self.datastore.get_connection() as conn,
                conn.transaction(),
                conn.cursor(row_factory=tuple_row) as curs,
            ):
                lock_pg_writer(curs, self.datastore)
                cursor = _PgCursor(curs)
                appended = append_leaves(cursor, stored_events, lambda oid: oid, self.head_cache)
                self._notify_channel(curs)
                curs.execute(
                    self.insert_with_positions,
                    (
                        [s.originator_id for s in stored_events],
                        [s.originator_version for s in stored_events],
                        [s.topic for s in stored_events],
                        [s.state for s in stored_events],
                        appended.positions,
                    ),
                )
                ids = [row[0] for row in curs.fetchall()]
                if after_append is not None:
                    after_append(cursor, appended.positions)
        except psycopg.IntegrityError as e:
            raise IntegrityError(str(e)) from e
        except psycopg.errors.LockNotAvailable as e:
            raise OperationalError(str(e)) from e
        commit_to(self.head_cache, appended)
        return ids
