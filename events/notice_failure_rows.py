"""The ``hold_notice_failures`` table (PostgreSQL only): the deliveries of hold notices failing
as of the last sending round (``legal_hold/notice_failures.py``), so that the hold report on any
host of a practice shows the group's last round, whichever host sent it.

Not a ledger table, and no PHI: a hold's and a custodian's ids, the notice's version and kind
(notice, reminder, escalation), times, a count of tries and an exception's type, as the file
SQLite keeps in the home (``status/hold-notice-failures.json``) holds them. Each round rewrites
the table whole, so the writer role may DELETE its rows. Operational state: backups do not
carry it (docs/BACKUP_FORMAT.md §1); the next round after a restore writes it again.
"""

from __future__ import annotations

TABLE = "hold_notice_failures"
COLUMNS = "hold_id, custodian_id, version, kind, first_failed, last_failed, tries, failure"
SELECT = f"SELECT {COLUMNS} FROM {TABLE} ORDER BY first_failed, hold_id, custodian_id, kind"
# One writer at a time (a round of one leader, or of a successor that took over mid-round);
# readers go on reading the last round whole.
LOCK = f"LOCK TABLE {TABLE} IN SHARE ROW EXCLUSIVE MODE"
CLEAR = f"DELETE FROM {TABLE}"
INSERT = f"INSERT INTO {TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def table_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return []
    return [
        f"CREATE TABLE IF NOT EXISTS {TABLE} (hold_id uuid NOT NULL, custodian_id uuid NOT NULL, "
        "version integer NOT NULL, kind text NOT NULL, first_failed timestamptz NOT NULL, "
        "last_failed timestamptz NOT NULL, tries integer NOT NULL, failure text NOT NULL, "
        "PRIMARY KEY (hold_id, custodian_id, version, kind))"
    ]
