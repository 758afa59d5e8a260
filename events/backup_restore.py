"""``chartledger restore``: a backup folder into an empty store, SQLite or PostgreSQL.

Nothing is written until the whole backup has been checked (events/backup_check.py). Then the
practice's files go into the home and every row into the store in one transaction, with the
same positions and bytes; before that transaction commits, the store check of
docs/LEDGER_FORMAT.md §10 runs on the rows it inserted, so a restore either commits a store
that verifies or leaves none behind. See docs/BACKUP_FORMAT.md §10.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg.sql import SQL, Identifier

from events import heads, tiles
from events.backup_check import (
    CheckedBackup,
    check_backup,
    event_rows,
    records,
    witness_records,
)
from events.backup_format import (
    CHECKPOINTS,
    COSIGNATURES,
    DATA_KEYS,
    KEYS,
    TIMESTAMPS,
    BackupError,
    BackupInvalid,
)
from events.backup_witnessed import Witnessed, known_witnesses
from events.config import StoreConfig, parse_database_url
from events.db import Cursor
from events.keys import read_master_key, write_secret
from events.ledger import Ledger
from events.private_files import private_dir
from events.schema import APPEND_ONLY_TABLES, MID_LINKS, RECENT_LINKS
from verify.merkle import leaf_hash
from verify.records import parse_leaf
from verify.store import check_store, stream_rows

Progress = Callable[[int, int], None]
BATCH = 2_000
LEDGER_TABLES = (*APPEND_ONLY_TABLES, RECENT_LINKS, MID_LINKS, "ledger_data_keys")


class StoreNotEmpty(BackupError):
    """Restore goes only into an empty store and a home without a practice."""


@dataclass(frozen=True)
class Restored:
    size: int
    root: str
    checkpoints: int
    data_keys: int
    witnessed: Witnessed


def restore_backup(
    config: StoreConfig,
    folder: Path,
    *,
    master_key_file: Path | None = None,
    trusted_key: str | None = None,
    trusted_witnesses: Iterable[str] = (),
    checking: Progress | None = None,
    restoring: Progress | None = None,
    verifying: Progress | None = None,
) -> Restored:
    refuse_non_empty(config)
    master_key = _master_key(config, master_key_file)
    # The witnesses' keys come from outside the backup, as the master key does: a key carried
    # in the backup would vouch only for whoever wrote it.
    witnesses = known_witnesses(config.home, trusted_witnesses)
    checked = check_backup(folder, master_key, trusted_key, checking, witnesses)
    created: list[Path] = []
    had_sqlite_file = config.sqlite_path.exists()
    try:
        _write_home(config, checked, master_key, created)
        ledger = Ledger(config)
        try:
            _insert(ledger, checked, restoring, verifying)
        finally:
            ledger.close()
    except BaseException:
        _remove(config, created, had_sqlite_file)
        raise
    manifest = checked.manifest
    return Restored(
        manifest.tree_size,
        manifest.root,
        manifest.counts["checkpoints"],
        manifest.counts["data_keys"],
        checked.witnessed,
    )


# -- before anything is written ---------------------------------------------------------------


def refuse_non_empty(config: StoreConfig) -> None:
    if config.practice_path.exists():
        raise StoreNotEmpty(f"a practice already exists at {config.home}: restore needs a new home")
    if config.keys_dir.exists() and any(config.keys_dir.glob("signing-*.pem")):
        raise StoreNotEmpty(
            f"{config.keys_dir} already holds signing keys: restore needs a new home"
        )
    filled = _filled_tables(config)
    if filled:
        raise StoreNotEmpty(
            f"the store at {config.display_location()} is not empty ({filled[0]} has rows): "
            "restore goes into an empty store only"
        )


def _filled_tables(config: StoreConfig) -> list[str]:
    if config.database_url is None:
        if not config.sqlite_path.exists():
            return []
        conn = sqlite3.connect(f"file:{config.sqlite_path}?mode=ro", uri=True)
        try:
            present = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            return [
                t
                for t in LEDGER_TABLES
                if t in present and conn.execute(f"SELECT 1 FROM {t} LIMIT 1").fetchone()
            ]
        finally:
            conn.close()
    location = parse_database_url(config.database_url)
    with psycopg.connect(location.conninfo(), autocommit=True, connect_timeout=5) as conn:
        filled = []
        for table in LEDGER_TABLES:
            qualified = f'"{location.schema}".{table}'
            row = conn.execute("SELECT to_regclass(%s)", (qualified,)).fetchone()
            if row is None or row[0] is None:
                continue
            query = SQL("SELECT 1 FROM {0}.{1} LIMIT 1").format(
                Identifier(location.schema), Identifier(table)
            )
            if conn.execute(query).fetchone():
                filled.append(table)
        return filled


def _master_key(config: StoreConfig, given: Path | None) -> bytes:
    own = config.master_key_path
    if given is None and not own.exists():
        raise BackupError(
            f"restore needs the practice's master key: give --master-key FILE or put it at {own}"
        )
    if given is None:
        return read_master_key(own)
    key = read_master_key(given)
    if own.exists() and read_master_key(own) != key:
        raise StoreNotEmpty(f"{own} holds another master key than {given}")
    return key


# -- the home's files --------------------------------------------------------------------------


def _write_home(
    config: StoreConfig, checked: CheckedBackup, master_key: bytes, created: list[Path]
) -> None:
    private_dir(config.home)
    if not config.master_key_path.exists():
        write_secret(config.master_key_path, master_key)
        created.append(config.master_key_path)
    for key_id, pem in checked.signing_keys.items():
        path = config.signing_key_path(key_id)
        write_secret(path, pem)
        created.append(path)
    # The practice as it was, except for the kind of store it now lives in.
    practice = dict(checked.practice)
    practice["store"] = "postgresql" if config.database_url else "sqlite"
    write_secret(config.practice_path, json.dumps(practice, indent=2).encode() + b"\n")
    created.append(config.practice_path)


def _remove(config: StoreConfig, created: list[Path], had_sqlite_file: bool) -> None:
    for path in created:
        path.unlink(missing_ok=True)
    if config.database_url is None and not had_sqlite_file:
        for suffix in ("", "-wal", "-shm"):
            config.sqlite_path.with_name(config.sqlite_path.name + suffix).unlink(missing_ok=True)


# -- the rows, in one transaction --------------------------------------------------------------


class _InTransaction:
    """The transaction's own cursor as verify.store's RawStore, so the check sees the rows
    that are about to commit (and nobody else does yet)."""

    location = ""

    def __init__(self, cursor: Cursor, dialect: str) -> None:
        self.cursor = cursor
        self.dialect = dialect

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        self.cursor.execute(sql, tuple(params))
        return self.cursor.fetchall()

    def stream(self, sql: str, batch: int = 4096) -> Iterator[tuple[Any, ...]]:
        """Through a second cursor on the transaction's connection, which sees the rows about
        to commit: read whole, the links of a 1M-event log held about 100 MB."""
        if self.dialect == "postgres":
            connection = self.cursor._cursor.connection  # type: ignore[attr-defined]  # _PgCursor
        else:
            connection = self.cursor.connection  # type: ignore[attr-defined]
        return stream_rows(connection, self.dialect, sql, batch)


def _insert(
    ledger: Ledger,
    checked: CheckedBackup,
    progress: Progress | None,
    verifying: Progress | None,
) -> None:
    """Every row in one transaction, committed only once the store check passes on them."""
    dialect = ledger.db.dialect
    with ledger.db.write() as c:
        for table in LEDGER_TABLES:
            c.execute(f"SELECT 1 FROM {table} LIMIT 1")
            if c.fetchone() is not None:
                raise StoreNotEmpty(f"the store filled up while restoring ({table} has rows)")
        _insert_keys(c, checked)
        _insert_events(c, dialect, checked, progress)
        # A backup carries no ledger_heads either: filled from the links just inserted.
        heads.ensure_heads(c)
        report = check_store(
            _InTransaction(c, dialect),  # type: ignore[arg-type]
            checked.practice["genesis_key_id"],
            verifying,
            workers=1,
        )
        if report.problems:
            raise BackupInvalid(f"the restored store does not verify: {report.problems[0].line()}")
        if report.root.hex() != checked.manifest.root or report.size != checked.manifest.tree_size:
            raise BackupInvalid("the restored store's root is not the backup's")


def _insert_keys(c: Cursor, checked: CheckedBackup) -> None:
    """Key statements, checkpoints, their cosignatures and timestamps, and data keys."""
    folder, manifest = checked.folder, checked.manifest
    c.executemany(
        "INSERT INTO ledger_keys (seq, statement, signature_self, signature_prev) "
        "VALUES (?, ?, ?, ?)",
        [
            (r["seq"], r["statement"], r["signature_self"], r["signature_prev"])
            for r in records(folder, manifest, KEYS)
        ],
    )
    for batch in _batches((r["size"], r["note"]) for r in records(folder, manifest, CHECKPOINTS)):
        c.executemany("INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)", batch)
    for batch in _batches(
        (r["size"], r["witness"], r["line"])
        for r in witness_records(folder, manifest, COSIGNATURES)
    ):
        c.executemany(
            "INSERT INTO ledger_cosignatures (size, witness, line) VALUES (?, ?, ?)", batch
        )
    for batch in _batches(
        (r["size"], r["tsa"], r["response"]) for r in witness_records(folder, manifest, TIMESTAMPS)
    ):
        c.executemany("INSERT INTO ledger_timestamps (size, tsa, response) VALUES (?, ?, ?)", batch)
    for batch in _batches(
        (r["name"], r["subject"], r["wrapped"]) for r in records(folder, manifest, DATA_KEYS)
    ):
        c.executemany(
            "INSERT INTO ledger_data_keys (name, subject, wrapped) VALUES (?, ?, ?)", batch
        )


def _insert_events(
    c: Cursor, dialect: str, checked: CheckedBackup, progress: Progress | None
) -> None:
    """Leaves, their links and events, a batch at a time, in position order."""
    stream = _stream_column(dialect)
    insert = _insert_sqlite if dialect == "sqlite" else _insert_postgres
    size, done = checked.manifest.tree_size, 0
    # A backup carries no tiles: they are built here from the leaves as they are inserted, in
    # the same transaction, and the store check below recomputes them (BACKUP_FORMAT.md).
    frontier: tiles.Frontier = []
    for batch in _batches(event_rows(checked.folder, checked.manifest)):
        leaves, links, events = [], [], []
        for row in batch:
            column = stream(row.stream)
            leaves.append((row.position, column, row.version, row.leaf))
            for subject, seq, _ in parse_leaf(row.leaf).links:
                links.append((subject, seq, row.position))
            events.append((column, row.version, row.topic, row.state, row.position))
        # Leaves first: the store refuses an event whose leaf is not already there.
        insert(c, INSERT_LEAVES, leaves)
        if links:
            insert(c, INSERT_LINKS, links)
        insert(c, INSERT_EVENTS, events)
        written = tiles.extend(frontier, done, [leaf_hash(leaf[3]) for leaf in leaves])
        tiles.write_tiles(c, [t for t in written if len(t[2]) == tiles.FULL_TILE_BYTES])
        done += len(batch)
        if progress is not None:
            progress(done, size)
    tiles.write_tiles(c, tiles.partial_rows(frontier, done))


INSERT_LEAVES = ("ledger_leaves", ("position", "stream", "version", "leaf"))
# A restore writes every link straight into main: one sorted batch per insert, nothing recent.
INSERT_LINKS = ("ledger_links_main", ("subject", "seq", "position"))
INSERT_EVENTS = (
    "stored_events",
    ("originator_id", "originator_version", "topic", "state", "position"),
)
_PG_TYPES = {
    "position": "bigint",
    "stream": "uuid",
    "version": "bigint",
    "leaf": "bytea",
    "subject": "text",
    "seq": "bigint",
    "originator_id": "uuid",
    "originator_version": "bigint",
    "topic": "text",
    "state": "bytea",
}


def _insert_sqlite(
    c: Cursor, into: tuple[str, tuple[str, ...]], rows: list[tuple[Any, ...]]
) -> None:
    table, columns = into
    marks = ", ".join("?" for _ in columns)
    c.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def _insert_postgres(
    c: Cursor, into: tuple[str, tuple[str, ...]], rows: list[tuple[Any, ...]]
) -> None:
    # One statement per batch, its columns as arrays sent in binary, as events/postgres.py
    # appends: row-by-row inserts cost a round trip's worth of work each.
    table, columns = into
    arrays = ", ".join(f"%b::{_PG_TYPES[name]}[]" for name in columns)
    raw = c._cursor  # type: ignore[attr-defined]  # events.db._PgCursor's psycopg cursor
    raw.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays})",
        [list(column) for column in zip(*rows, strict=True)],
    )


def _stream_column(dialect: str) -> Callable[[str], Any]:
    # SQLite keeps streams as 32 hex digits, PostgreSQL as uuid (LEDGER_FORMAT.md §4.4).
    if dialect == "sqlite":
        return lambda text: text.replace("-", "")
    return UUID


def _batches(rows: Iterable[Any]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
