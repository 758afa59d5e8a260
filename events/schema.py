"""The ledger's own tables, beside eventsourcing's ``stored_events`` (LEDGER_FORMAT.md §11)."""

from __future__ import annotations

from events.db import Cursor, Dialect

APPEND_ONLY_TABLES = (
    "stored_events",
    "ledger_leaves",
    "ledger_links",
    "ledger_checkpoints",
    "ledger_keys",
)


def table_statements(dialect: Dialect) -> list[str]:
    blob = "BLOB" if dialect == "sqlite" else "bytea"
    big = "INTEGER" if dialect == "sqlite" else "bigint"
    stream = "TEXT" if dialect == "sqlite" else "uuid"
    # One b-tree instead of a table plus its primary-key index.
    without_rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
    return [
        f"CREATE TABLE IF NOT EXISTS ledger_leaves ("
        f"position {big} PRIMARY KEY, stream {stream} NOT NULL, version {big} NOT NULL, "
        f"leaf {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS ledger_links ("
        f"subject TEXT NOT NULL, seq {big} NOT NULL, position {big} NOT NULL, "
        f"PRIMARY KEY (subject, seq)){without_rowid}",
        f"CREATE TABLE IF NOT EXISTS ledger_checkpoints (size {big} PRIMARY KEY, "
        f"note {blob} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS ledger_keys (seq {big} PRIMARY KEY, "
        f"statement {blob} NOT NULL, signature_self {blob} NOT NULL, signature_prev {blob})",
        f"CREATE TABLE IF NOT EXISTS ledger_data_keys (name TEXT PRIMARY KEY, "
        f"subject TEXT NOT NULL UNIQUE, wrapped {blob} NOT NULL)",
    ]


def create_tables(cursor: Cursor, dialect: Dialect) -> None:
    for statement in table_statements(dialect):
        cursor.execute(statement)
