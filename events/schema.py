"""The ledger's own tables, beside eventsourcing's ``stored_events`` (LEDGER_FORMAT.md §11)."""

from __future__ import annotations

from events import (
    heads,
    idempotency,
    job_rows,
    loop_beats,
    notice_failure_rows,
    session_clocks,
    throttle_tables,
    tiles,
)
from events.db import Cursor, Dialect

APPEND_ONLY_TABLES = (
    "stored_events",
    "ledger_leaves",
    "ledger_links_main",
    "ledger_checkpoints",
    "ledger_keys",
    "ledger_cosignatures",
    "ledger_timestamps",
)
# On SQLite links land here first, and the append that crosses a multiple of
# events.store.LINKS_MERGE_EVERY positions moves them into ledger_links_mid, and the one that
# crosses a multiple of events.store.LINKS_SETTLE_EVERY moves those into ledger_links_main
# (PostgreSQL's writer puts them straight into main). Rows leave recent only once mid or main
# holds them, and mid only once main does.
RECENT_LINKS = "ledger_links_recent"
MID_LINKS = "ledger_links_mid"
# What every reader reads: each leaf's links, wherever they are kept at the moment.
LINKS_VIEW = (
    "SELECT subject, seq, position FROM ledger_links_main "
    f"UNION ALL SELECT subject, seq, position FROM {MID_LINKS} "
    f"UNION ALL SELECT subject, seq, position FROM {RECENT_LINKS}"
)


def table_statements(dialect: Dialect) -> list[str]:
    blob = "BLOB" if dialect == "sqlite" else "bytea"
    big = "INTEGER" if dialect == "sqlite" else "bigint"
    stream = "TEXT" if dialect == "sqlite" else "uuid"
    # One b-tree instead of a table plus its primary-key index.
    without_rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
    # No index on the recent links: appended in position order they fill the last page or two,
    # where an index would scatter each append's links over its pages again.
    return [
        f"CREATE TABLE IF NOT EXISTS ledger_leaves ("
        f"position {big} PRIMARY KEY, stream {stream} NOT NULL, version {big} NOT NULL, "
        f"leaf {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS ledger_links_main ("
        f"subject TEXT NOT NULL, seq {big} NOT NULL, position {big} NOT NULL, "
        f"PRIMARY KEY (subject, seq)){without_rowid}",
        f"CREATE TABLE IF NOT EXISTS {RECENT_LINKS} ("
        f"subject TEXT NOT NULL, seq {big} NOT NULL, position {big} NOT NULL)",
        # Keyed as main, but small (at most LINKS_SETTLE_EVERY positions' links): a merge of
        # recent into it changes at most its own pages, however large main has grown.
        f"CREATE TABLE IF NOT EXISTS {MID_LINKS} ("
        f"subject TEXT NOT NULL, seq {big} NOT NULL, position {big} NOT NULL, "
        f"PRIMARY KEY (subject, seq)){without_rowid}",
        _create_view("ledger_links", LINKS_VIEW, dialect),
        f"CREATE TABLE IF NOT EXISTS ledger_checkpoints (size {big} PRIMARY KEY, "
        f"note {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS ledger_keys (seq {big} PRIMARY KEY, "
        f"statement {blob} NOT NULL, signature_self {blob} NOT NULL, signature_prev {blob})",
        # Kept beside the checkpoints they are about (docs/WITNESS.md §4): a witness's
        # cosignature line, and a TSA's RFC 3161 response over the checkpoint's body.
        f"CREATE TABLE IF NOT EXISTS ledger_cosignatures (size {big} NOT NULL, "
        f"witness TEXT NOT NULL, line TEXT NOT NULL, PRIMARY KEY (size, witness))",
        f"CREATE TABLE IF NOT EXISTS ledger_timestamps (size {big} NOT NULL, "
        f"tsa TEXT NOT NULL, response {blob} NOT NULL, PRIMARY KEY (size, tsa))",
        f"CREATE TABLE IF NOT EXISTS ledger_data_keys (name TEXT PRIMARY KEY, "
        f"subject TEXT NOT NULL UNIQUE, wrapped {blob} NOT NULL)",
        # The few records of a kind that are read by kind (the users, break-glass grants,
        # productions, disposal approvals: their topic) are found through this index, where
        # each such read went through every event (245 ms at 1M events on PostgreSQL for a
        # production's user names, growing with the log). About 28 bytes an event on SQLite;
        # PostgreSQL keeps each topic once per page of its B-tree (deduplication).
        "CREATE INDEX IF NOT EXISTS stored_events_by_topic ON stored_events (topic)",
        # The Merkle tree's hashes as tiles (LEDGER_FORMAT.md §12): a cache of the leaves.
        tiles.table_statement(dialect),
        # The subject-heads tree's leaves at the tip (LEDGER_FORMAT.md §12.2): a cache too.
        heads.table_statement(dialect),
        *idempotency.table_statements(dialect),
        *job_rows.table_statements(dialect),
        *session_clocks.table_statements(dialect),
        *throttle_tables.table_statements(dialect),
        *loop_beats.table_statements(dialect),
        *notice_failure_rows.table_statements(dialect),
    ]


def _create_view(name: str, query: str, dialect: Dialect) -> str:
    if dialect == "sqlite":
        return f"CREATE VIEW IF NOT EXISTS {name} AS {query}"
    # PostgreSQL has no CREATE VIEW IF NOT EXISTS, and CREATE OR REPLACE would lock out every
    # reader of the view each time a process opens the store.
    return (
        f"DO $$ BEGIN IF to_regclass('{name}') IS NULL THEN CREATE VIEW {name} AS {query}; "
        "END IF; END $$"
    )


def create_tables(cursor: Cursor, dialect: Dialect) -> None:
    _move_old_links_table(cursor, dialect)
    _drop_view_without_mid(cursor, dialect)
    for statement in table_statements(dialect):
        cursor.execute(statement)


def _drop_view_without_mid(cursor: Cursor, dialect: Dialect) -> None:
    """A store made before ledger_links_mid has a view over two tables: it goes, to be made
    again over three, and so does SQLite's trigger that let a recent link leave only for main
    (events/guards.py makes it again, letting it leave for mid too)."""
    if dialect == "sqlite":
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'view' AND name = 'ledger_links'"
        )
    else:
        cursor.execute(
            "SELECT pg_get_viewdef(c.oid) FROM pg_class c WHERE c.relkind = 'v' "
            "AND c.relname = 'ledger_links' AND c.relnamespace = current_schema()::regnamespace"
        )
    row = cursor.fetchone()
    if row is None or MID_LINKS in str(row[0]):
        return
    cursor.execute("DROP VIEW ledger_links")
    if dialect == "sqlite":
        cursor.execute(f"DROP TRIGGER IF EXISTS {RECENT_LINKS}_refuse_delete")


def _move_old_links_table(cursor: Cursor, dialect: Dialect) -> None:
    """A store made before the links were split keeps them all in a table named ledger_links:
    it becomes ledger_links_main (its rows are exactly what main should hold), and its old
    triggers go, to be made again under the new name."""
    if dialect == "sqlite":
        cursor.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ledger_links'")
    else:
        cursor.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name = 'ledger_links' AND table_type = 'BASE TABLE'"
        )
    if cursor.fetchone() is None:
        return
    if dialect == "sqlite":
        for action in ("update", "delete"):
            cursor.execute(f"DROP TRIGGER IF EXISTS ledger_links_refuse_{action}")
    else:
        for name in ("refuse_change", "refuse_truncate"):
            cursor.execute(f"DROP TRIGGER IF EXISTS ledger_links_{name} ON ledger_links")
    cursor.execute("ALTER TABLE ledger_links RENAME TO ledger_links_main")
