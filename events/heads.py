"""The subject-heads tree's leaves kept in the store as the log grows (LEDGER_FORMAT.md §12.2).

``ledger_heads`` holds, per subject, its newest link among the settled links (those in
``ledger_links_main`` and ``ledger_links_mid``) and the hash of the subject-heads leaf (§7) it
gives, written in the transaction that puts the links there: every append on PostgreSQL, the
append that merges the recent links on SQLite (a row per subject written with each append of
100 events changed 67 pages of SQLite's WAL, a quarter again of what the append wrote). The heads
at a size are these rows, with the newest of the few recent links (SQLite, at most 4,096
positions' worth, one scan) laid over them, and, for the subjects whose head moved at or past
the size, their link before it read from ``ledger_links``. So a process that starts signs its
first checkpoint from one read of this table (O(subjects) rows, no leaf), where it used to
seek each subject's last link in the links index (O(subjects) index lookups, 70-100 ms at
1,300 subjects on PostgreSQL).

Like the tiles, a cache of what the leaves determine, trusted for nothing: the signer compares
the heads root it builds from these rows with the newest checkpoint's signed one before it
signs anything, and `chartledger verify` recomputes every row from the links
(verify/heads.py). A row only moves forward (the database refuses anything else,
events/guards.py).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable

import psycopg
from eventsourcing.persistence import PersistenceError

from events.db import Cursor, Database, Dialect
from verify.heads import LATEST  # the rows the table must hold (a store made before it)
from verify.merkle import leaf_hash
from verify.records import head_bytes

log = logging.getLogger(__name__)
TABLE = "ledger_heads"
HeadRow = tuple[str, int, int, bytes]  # (subject, seq, position, leaf hash)
# A row replaced by the subject's newer head (the guard refuses an older one).
UPSERT = (
    "INSERT INTO ledger_heads (subject, seq, position, hash) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (subject) DO UPDATE SET seq = excluded.seq, position = excluded.position, "
    "hash = excluded.hash"
)
# Each subject's newest link below a size, from the end of its links (every links table:
# SQLite keeps the newest links in ledger_links_recent and ledger_links_mid until they settle).
_BEFORE = (
    "SELECT seq, position FROM ledger_links_main WHERE subject = ? AND position < ? "
    "UNION ALL SELECT seq, position FROM ledger_links_mid WHERE subject = ? AND position < ? "
    "UNION ALL SELECT seq, position FROM ledger_links_recent WHERE subject = ? AND position < ? "
    "ORDER BY seq DESC LIMIT 1"
)
RECENT = "SELECT subject, seq, position FROM ledger_links_recent WHERE position < ?"


def table_statement(dialect: Dialect) -> str:
    blob = "BLOB" if dialect == "sqlite" else "bytea"
    big = "INTEGER" if dialect == "sqlite" else "bigint"
    without_rowid = " WITHOUT ROWID" if dialect == "sqlite" else ""
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (subject TEXT NOT NULL PRIMARY KEY, "
        f"seq {big} NOT NULL, position {big} NOT NULL, hash {blob} NOT NULL){without_rowid}"
    )


def head_row(subject: str, seq: int, position: int) -> HeadRow:
    return (subject, seq, position, leaf_hash(head_bytes(subject, seq, position)))


def head_rows(heads: dict[str, tuple[int, int]]) -> list[HeadRow]:
    """The rows for an append's heads (each subject's head once the append is in)."""
    return [head_row(s, seq, position) for s, (seq, position) in sorted(heads.items())]


def write_heads(cursor: Cursor, heads: dict[str, tuple[int, int]]) -> None:
    rows = head_rows(heads)
    if rows:
        cursor.executemany(UPSERT, rows)


def recent_heads(cursor: Cursor, size: int | None = None) -> dict[str, tuple[int, int]]:
    """Each subject's newest link in ledger_links_recent (below ``size``): one scan of a
    table of at most LINKS_MERGE_EVERY positions' links, reduced here."""
    cursor.execute(RECENT, (2**62 if size is None else size,))
    found: dict[str, tuple[int, int]] = {}
    for subject, seq, position in cursor.fetchall():
        if subject not in found or seq > found[subject][0]:
            found[subject] = (seq, position)
    return found


def settle_recent_heads(cursor: Cursor) -> None:
    """Before SQLite's writer merges the recent links: their heads into the table."""
    write_heads(cursor, recent_heads(cursor))


def has_settled_links(cursor: Cursor) -> bool:
    cursor.execute(
        "SELECT EXISTS (SELECT 1 FROM ledger_links_main) OR EXISTS (SELECT 1 FROM ledger_links_mid)"
    )
    return bool(cursor.fetchall()[0][0])


def ensure_heads(cursor: Cursor) -> bool:
    """Under the writer lock: fill an empty table from the links (a store made before it, or
    restored from a backup, which does not carry it). True when it had to be filled."""
    cursor.execute(f"SELECT 1 FROM {TABLE} LIMIT 1")
    if cursor.fetchone() is not None:
        return False
    cursor.execute(LATEST)
    rows = [head_row(s, seq, position) for s, seq, position in cursor.fetchall()]
    if rows:
        cursor.executemany(UPSERT, rows)
    return bool(rows)


def open_heads(db: Database) -> None:
    """When a store is opened: fill ledger_heads if it is empty. A failure is logged and left
    for the signer's root check and `chartledger verify` to name (as events/tiles.open_tiles)."""
    try:
        with db.write() as c:
            ensure_heads(c)
    except (sqlite3.DatabaseError, psycopg.Error, PersistenceError) as e:
        log.error("ledger_heads could not be filled from the links: %s", e)


def stored_heads(cursor: Cursor) -> list[HeadRow]:
    cursor.execute(f"SELECT subject, seq, position, hash FROM {TABLE}")
    return [(s, seq, p, bytes(h)) for s, seq, p, h in cursor.fetchall()]


def heads_at(cursor: Cursor, size: int, rows: Iterable[HeadRow] | None = None) -> list[HeadRow]:
    """Every subject's head row below ``size``, sorted by UTF-8 bytes (the tree's leaf order).

    The stored rows are the settled heads; the recent links below ``size`` come after them
    (greater seq) and replace them; a subject whose remaining head is at ``size`` or later
    takes its link before ``size`` instead (one index lookup each: the subjects seen since), or
    drops out if it had none."""
    recent = recent_heads(cursor, size)
    found = [head_row(s, seq, position) for s, (seq, position) in recent.items()]
    for row in stored_heads(cursor) if rows is None else rows:
        if row[0] in recent:
            continue
        subject, _, position, _ = row
        if position >= size:
            cursor.execute(_BEFORE, (subject, size) * 3)
            earlier = cursor.fetchall()
            if not earlier:
                continue
            row = head_row(subject, earlier[0][0], earlier[0][1])
        found.append(row)
    found.sort(key=lambda h: h[0].encode())
    return found
