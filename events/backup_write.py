"""``chartledger backup``: copy a practice's ledger into a store-neutral folder.

The copy is one snapshot of the store (a read transaction: SQLite's, or PostgreSQL's at
REPEATABLE READ), so it is consistent while the practice goes on writing. The backup is first
recorded in the log as ``Backups.Taken`` and a checkpoint is signed over it; the snapshot, taken
after, holds both. See docs/BACKUP_FORMAT.md.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import msgpack

from events.backup_format import (
    CHECKPOINTS,
    CHUNK_EVENTS,
    COSIGNATURES,
    DATA_KEYS,
    FORMAT_VERSION,
    KEYS,
    MANIFEST,
    PRACTICE,
    SIGNING_KEYS,
    TIMESTAMPS,
    BackupError,
    FileEntry,
    Manifest,
    RecordWriter,
    chunk_name,
    event_record,
)
from events.backup_keys import wrap_signing_key
from events.backup_log import LogRoots
from events.backup_record import record_backup
from events.keys import write_secret
from events.ledger import Ledger
from events.private_files import private_dir
from events.verification import store_location
from verify.canonical import format_timestamp, pack_ordered
from verify.errors import VerificationError
from verify.keyhistory import parse_statement
from verify.store import RawStore, open_store

Progress = Callable[[int, int], None]
FETCH = 2_000  # positions per query
EVENTS_SQL = (
    "SELECT l.position, l.stream, l.version, l.leaf, e.topic, e.state, e.position "
    "FROM ledger_leaves l LEFT JOIN stored_events e "
    "ON e.originator_id = l.stream AND e.originator_version = l.version "
    "WHERE l.position >= ? AND l.position < ? ORDER BY l.position"
)


def take_backup(
    ledger: Ledger, out: Path, *, by: str | None = None, progress: Progress | None = None
) -> Manifest:
    """Record the backup, then write it to ``out`` (new or empty); return its manifest.

    On any failure the files written so far are removed again.
    """
    _claim_folder(out)
    try:
        backup_event = record_backup(ledger, str(uuid.uuid4()), FORMAT_VERSION, by)
        ledger.checkpointer.issue()
        store = open_store(store_location(ledger))
        try:
            manifest = _write(ledger, store, out, backup_event, progress)
        finally:
            store.close()
    except BaseException:
        _empty_folder(out)
        raise
    return manifest


def _claim_folder(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} is not an empty folder: a backup goes into a new one")
    private_dir(out)  # a new one 0700; an empty folder the user made is theirs


def _empty_folder(out: Path) -> None:
    for child in out.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _write(
    ledger: Ledger, store: RawStore, out: Path, backup_event: int, progress: Progress | None
) -> Manifest:
    size = store.rows("SELECT COALESCE(MAX(position) + 1, 0) FROM ledger_leaves")[0][0]
    (events,) = store.rows("SELECT COUNT(*) FROM stored_events")[0]
    if events != size:
        raise BackupError(
            f"the store holds {events} events for {size} leaves: run `chartledger verify`"
        )
    files: list[FileEntry] = []
    practice = ledger.config.practice_path.read_bytes()
    write_secret(out / PRACTICE, practice)
    files.append(FileEntry(PRACTICE, _sha256(practice), len(practice), 0))
    statements = store.rows(
        "SELECT seq, statement, signature_self, signature_prev FROM ledger_keys ORDER BY seq"
    )
    files.append(_write_keys(out, statements))
    files.append(_write_signing_keys(ledger, out, statements))
    checkpoints = store.rows("SELECT size, note FROM ledger_checkpoints ORDER BY size")
    files.append(
        _write_rows(
            out,
            CHECKPOINTS,
            ({"note": bytes(note), "size": n} for n, note in checkpoints),
        )
    )
    # What witnesses and a TSA said about those checkpoints: evidence kept outside the practice
    # too, but only here does a restored store get it back.
    cosignatures = _write_rows(
        out,
        COSIGNATURES,
        (
            {"line": line, "size": n, "witness": witness}
            for n, witness, line in store.rows(
                "SELECT size, witness, line FROM ledger_cosignatures ORDER BY size, witness"
            )
        ),
    )
    timestamps = _write_rows(
        out,
        TIMESTAMPS,
        (
            {"tsa": tsa, "size": n, "response": bytes(response)}
            for n, tsa, response in store.rows(
                "SELECT size, tsa, response FROM ledger_timestamps ORDER BY size, tsa"
            )
        ),
    )
    files += [cosignatures, timestamps]
    data_keys = _write_rows(
        out,
        DATA_KEYS,
        ({"name": n, "subject": s, "wrapped": bytes(w)} for n, s, w in _data_keys(store)),
    )
    files.append(data_keys)
    roots = LogRoots()
    for index, start in enumerate(range(0, size, CHUNK_EVENTS)):
        stop = min(size, start + CHUNK_EVENTS)
        files.append(_write_chunk(store, out, index, start, stop, roots, size, progress))
    if progress is not None and size == 0:
        progress(0, 0)
    practice_json = ledger.practice
    manifest = Manifest(
        practice_id=practice_json["practice_id"],
        origin=ledger.origin,
        genesis_key_id=practice_json["genesis_key_id"],
        created=format_timestamp(datetime.now(UTC)),
        source=practice_json.get("store", "sqlite"),
        tree_size=size,
        root=roots.root().hex(),
        subjects_root=roots.subjects_root().hex(),
        newest_checkpoint=checkpoints[-1][0] if checkpoints else None,
        backup_event=backup_event if backup_event < size else None,
        counts={
            "events": size,
            "checkpoints": len(checkpoints),
            "key_statements": len(statements),
            "data_keys": data_keys.records,
            "signing_keys": len(statements),
            "cosignatures": cosignatures.records,
            "timestamps": timestamps.records,
        },
        files=files,
    )
    # Written last: a folder without a manifest is an unfinished backup and restores nothing.
    write_secret(out / MANIFEST, manifest.to_bytes())
    return manifest


def _data_keys(store: RawStore) -> Iterator[tuple[Any, ...]]:
    """Every data key, a page at a time (one per subject: there may be many)."""
    last = ""
    while True:
        rows = store.rows(
            "SELECT name, subject, wrapped FROM ledger_data_keys WHERE name > ? "
            f"ORDER BY name LIMIT {FETCH}",
            (last,),
        )
        if not rows:
            return
        yield from rows
        last = rows[-1][0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_rows(out: Path, name: str, rows: Any) -> FileEntry:
    writer = RecordWriter(out, name)
    for row in rows:
        writer.write(pack_ordered(row))
    return writer.close()


def _write_keys(out: Path, statements: list[tuple[Any, ...]]) -> FileEntry:
    return _write_rows(
        out,
        KEYS,
        (
            {
                "seq": seq,
                "statement": bytes(statement),
                "signature_prev": None if prev is None else bytes(prev),
                "signature_self": bytes(own),
            }
            for seq, statement, own, prev in statements
        ),
    )


def _write_signing_keys(ledger: Ledger, out: Path, statements: list[tuple[Any, ...]]) -> FileEntry:
    rows = []
    for _, statement, _, _ in statements:
        key_id = parse_statement(bytes(statement)).key_id
        path = ledger.config.signing_key_path(key_id)
        if not path.exists():
            raise BackupError(f"signing key {key_id[:16]}… is not in {ledger.config.keys_dir}")
        wrapped = wrap_signing_key(ledger.master_key, ledger.origin, key_id, path.read_bytes())
        rows.append({"key_id": key_id, "wrapped": wrapped})
    return _write_rows(out, SIGNING_KEYS, rows)


def _write_chunk(
    store: RawStore,
    out: Path,
    index: int,
    start: int,
    stop: int,
    roots: LogRoots,
    size: int,
    progress: Progress | None,
) -> FileEntry:
    writer = RecordWriter(out, chunk_name(index))
    for a in range(start, stop, FETCH):
        for position, stream, version, leaf, topic, state, event_position in store.rows(
            EVENTS_SQL, (a, min(stop, a + FETCH))
        ):
            if position != roots.size or state is None or event_position != position:
                raise BackupError(
                    f"the store is inconsistent at position {roots.size}: run `chartledger verify`"
                )
            leaf = bytes(leaf)
            try:
                roots.add(position, leaf, msgpack.unpackb(leaf)["links"])
            except (VerificationError, ValueError, KeyError, TypeError) as e:
                raise BackupError(
                    f"the store's log is broken ({e}): run `chartledger verify`"
                ) from None

            writer.write(
                event_record(position, _stream_text(stream), version, topic, bytes(state), leaf)
            )
        if progress is not None:
            progress(roots.size, size)
    return writer.close()


def _stream_text(value: Any) -> str:
    """The store-neutral form: SQLite keeps 32 hex digits, PostgreSQL a uuid."""
    return str(value if isinstance(value, UUID) else UUID(hex=value))
