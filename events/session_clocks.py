"""The ``session_clocks`` table (PostgreSQL only): when each session was last used, for the idle
timeout of servers on several hosts sharing one store (``api/session_clocks.py``).

Not a ledger table and no PHI: a session id and a time (Unix milliseconds), which the ledger's
session events hold too. Rows move forward (a later time replaces an earlier one) and are
deleted once the session has ended or gone idle, so the writer role may UPDATE and DELETE
them. SQLite keeps its clocks in a file in the practice home (``api/activity.py``): one host.
"""

from __future__ import annotations

TABLE = "session_clocks"
UPSERT = (
    f"INSERT INTO {TABLE} (session_id, seen) SELECT * FROM unnest(?::uuid[], ?::bigint[]) "
    f"ON CONFLICT (session_id) DO UPDATE SET seen = GREATEST({TABLE}.seen, EXCLUDED.seen)"
)
SEEN = f"SELECT seen FROM {TABLE} WHERE session_id = ?"
FORGET = f"DELETE FROM {TABLE} WHERE session_id = ?"
FORGET_IDLE = f"DELETE FROM {TABLE} WHERE seen < ?"


def table_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return []
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (session_id uuid PRIMARY KEY, seen bigint NOT NULL)"
    ]
