"""The ``jobs`` table: long work started over HTTP (``api/jobs/``), one row per job.

Rows are not ledger rows: a job's start and end are ledger events (``domain/jobs.py``); the row
carries what moves while it runs (state, progress, heartbeat, a cancel request) so that every
server process answers for every job. Rows are updated as the work goes and deleted once old
(docs/JOBS.md §5), so the writer role may UPDATE and DELETE them.
"""

from __future__ import annotations

TABLE = "jobs"


def table_statements(dialect: str) -> list[str]:
    blob = "BLOB" if dialect == "sqlite" else "bytea"
    big = "INTEGER" if dialect == "sqlite" else "bigint"
    return [
        # Times are Unix milliseconds. worker: "<host>/<pid namespace>:<pid>", the process
        # running the job.
        # result and error: JSON, sealed (they may name what an import rejected).
        f"CREATE TABLE IF NOT EXISTS {TABLE} (job_id TEXT PRIMARY KEY, kind TEXT NOT NULL, "
        f"user_id TEXT NOT NULL, state TEXT NOT NULL, done {big} NOT NULL, total {big}, "
        f"stage TEXT NOT NULL, result {blob}, error {blob}, started {big} NOT NULL, "
        f"finished {big}, heartbeat {big} NOT NULL, worker TEXT NOT NULL, "
        "cancel INTEGER NOT NULL DEFAULT 0)",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_user ON {TABLE} (user_id, started)",
    ]
