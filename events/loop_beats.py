"""The ``loop_beats`` table (PostgreSQL only): the background loops' heartbeats, shared by every
server of a practice on whichever host it runs (``events/background.py``), so that ``GET
/status``, ``/health`` and ``chartledger status --local`` on any host answer for the loops of
the whole group, whichever host leads them.

Not a ledger table and no PHI: a loop's name, its cadence, a few times, the type of its last
failure's exception, and which host and process wrote last. One row per loop, moved forward by
every write as ``events.beats.merge`` moves a heartbeat file: each time the later of the
two (GREATEST ignores a NULL), the failure named with the later failure, the cadence of the
newest writer. Rows are updated, never deleted. Operational state: backups do not carry it
(docs/BACKUP_FORMAT.md §1). SQLite keeps its heartbeats in files in the one home.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime

import psycopg
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from events.beats import Beat
from events.config import parse_database_url
from events.db import Database, settle

# Seconds a heartbeat's write or read waits for PostgreSQL (a connection, a lock, the statement)
# before giving up on the shared row: the file answers meanwhile.
SHARED_TIMEOUT = 2.0
TABLE = "loop_beats"
COLUMNS = "name, cadence, late_after, started, last_ok, last_failure, failure"
UPSERT = (
    f"INSERT INTO {TABLE} ({COLUMNS}, host, pid, written) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, now()) "
    "ON CONFLICT (name) DO UPDATE SET "
    "cadence = EXCLUDED.cadence, late_after = EXCLUDED.late_after, "
    f"started = GREATEST({TABLE}.started, EXCLUDED.started), "
    f"last_ok = GREATEST({TABLE}.last_ok, EXCLUDED.last_ok), "
    f"last_failure = GREATEST({TABLE}.last_failure, EXCLUDED.last_failure), "
    # As merge(): the new failure when its time is the later (or the row has none), else the old.
    f"failure = CASE WHEN {TABLE}.last_failure IS NULL "
    f"OR EXCLUDED.last_failure >= {TABLE}.last_failure "
    f"THEN EXCLUDED.failure ELSE {TABLE}.failure END, "
    "host = EXCLUDED.host, pid = EXCLUDED.pid, written = EXCLUDED.written"
)
SELECT = f"SELECT {COLUMNS} FROM {TABLE}"


def table_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return []
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (name text PRIMARY KEY, "
        "cadence double precision NOT NULL, late_after double precision NOT NULL, "
        "started timestamptz, last_ok timestamptz, last_failure timestamptz, failure text, "
        "host text NOT NULL, pid integer NOT NULL, written timestamptz NOT NULL)"
    ]


def record_shared(db: Database, beat: Beat) -> None:
    """Merge ``beat`` into its loop's row of ``loop_beats`` (PostgreSQL only), naming this host
    and process as the last writer; raise if the database does not take it within
    ``SHARED_TIMEOUT`` seconds."""
    datastore = db.datastore
    assert isinstance(datastore, PostgresDatastore)
    with datastore.pool.connection(timeout=SHARED_TIMEOUT) as conn:
        settle(conn, datastore)
        with conn.transaction():
            conn.execute(_BRIEFLY)
            conn.execute(
                UPSERT,
                (
                    beat.name,
                    beat.cadence,
                    beat.late_after,
                    beat.started,
                    beat.last_ok,
                    beat.last_failure,
                    beat.failure,
                    socket.gethostname(),
                    os.getpid(),
                ),
            )


_BRIEFLY = (
    f"SET LOCAL lock_timeout = '{SHARED_TIMEOUT}s'; "
    f"SET LOCAL statement_timeout = '{SHARED_TIMEOUT}s'"
)


def read_shared(db: Database) -> dict[str, Beat]:
    """Every loop's row of ``loop_beats`` (none on SQLite); raises what the database raises
    (``STORE_ERRORS``) when it cannot be read within about ``SHARED_TIMEOUT`` seconds."""
    if db.dialect == "sqlite":
        return {}
    datastore = db.datastore
    assert isinstance(datastore, PostgresDatastore)
    with datastore.pool.connection(timeout=SHARED_TIMEOUT) as conn:
        settle(conn, datastore)
        with conn.transaction(), conn.cursor(row_factory=tuple_row) as cursor:
            cursor.execute(_BRIEFLY)
            return _beats(cursor.execute(SELECT).fetchall())


def read_shared_at(database_url: str | None) -> dict[str, Beat]:
    """As ``read_shared``, on a connection of its own to the store at ``database_url`` (for a
    command that opens no store); none without one (SQLite)."""
    if database_url is None:
        return {}
    pg = parse_database_url(database_url)
    timeout = max(1, round(SHARED_TIMEOUT))
    with psycopg.connect(pg.conninfo(), autocommit=True, connect_timeout=timeout) as conn:
        conn.execute(SQL("SET search_path TO {0}").format(Identifier(pg.schema)))
        conn.execute(_BRIEFLY.replace("SET LOCAL", "SET"))
        return _beats(conn.execute(SELECT).fetchall())


def _beats(rows: list[tuple[object, ...]]) -> dict[str, Beat]:
    def utc(moment: object) -> datetime | None:
        return moment.astimezone(UTC) if isinstance(moment, datetime) else None

    found = {}
    for name, cadence, late_after, started, last_ok, last_failure, failure in rows:
        found[str(name)] = Beat(
            name=str(name),
            cadence=float(cadence),  # type: ignore[arg-type]
            late_after=float(late_after),  # type: ignore[arg-type]
            started=utc(started),
            last_ok=utc(last_ok),
            last_failure=utc(last_failure),
            failure=None if failure is None else str(failure),
        )
    return found
