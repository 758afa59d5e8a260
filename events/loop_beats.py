"""The ``loop_beats`` table (PostgreSQL only): the background loops' heartbeats, shared by every
server of a practice on whichever host it runs (``events/background.py``), so that ``GET
/status``, ``/health`` and ``chartledger status --local`` on any host answer for the loops of
the whole group, whichever host leads them.

Not a ledger table and no PHI: a loop's name, its cadence, a few times, the type of its last
failure's exception, and which host and process wrote last. One row per loop, moved forward by
every write as ``events.background.merge`` moves a heartbeat file: each time the later of the
two (GREATEST ignores a NULL), the failure named with the later failure, the cadence of the
newest writer. Rows are updated, never deleted. Operational state: backups do not carry it
(docs/BACKUP_FORMAT.md §1). SQLite keeps its heartbeats in files in the one home.
"""

from __future__ import annotations

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
