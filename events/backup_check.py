"""Check a backup folder before anything is restored from it (docs/BACKUP_FORMAT.md §9).

In order: the manifest; every file's length and SHA-256; practice.json against the manifest;
the key history (pinned to the practice's first key, or ``trusted_key``); every signing key
opening under the master key as the key it names; every data key unwrapping under the master
key with a name this practice minted; every checkpoint's signature; and then every event,
streamed: its row against its header, its header against its leaf, its sealed payload against
its header, each subject's chain, and the Merkle and subject-heads roots at every checkpoint and
at the backup's tree size. Any failure is one BackupInvalid naming what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from events.backup_format import (
    CHECKPOINT_KEYS,
    CHECKPOINT_TYPES,
    CHECKPOINTS,
    COSIGNATURE_KEYS,
    COSIGNATURE_TYPES,
    COSIGNATURES,
    DATA_KEY_KEYS,
    DATA_KEY_TYPES,
    DATA_KEYS,
    EVENT_KEYS,
    EVENT_TYPES,
    KEY_KEYS,
    KEY_TYPES,
    KEYS,
    PRACTICE,
    SIGNING_KEY_KEYS,
    SIGNING_KEY_TYPES,
    SIGNING_KEYS,
    TIMESTAMP_KEYS,
    TIMESTAMP_TYPES,
    TIMESTAMPS,
    BackupInvalid,
    EventRow,
    Manifest,
    event_row,
    hash_file,
    read_manifest,
    read_records,
)
from events.backup_keys import SigningKeyUnwrapError, unwrap_signing_key
from events.backup_log import LogRoots
from events.backup_record import Backups
from events.backup_witnessed import Witnessed, check_cosignatures, check_timestamps
from events.keys import KeyError_, unwrap_key
from events.sealing import key_name_minted_here
from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
from verify.cosignature import Vkey
from verify.errors import VerificationError
from verify.hashing import short
from verify.keyhistory import KeyStatement, key_for_size, verify_key_history
from verify.records import Header, parse_header, parse_leaf, split_record

Progress = Callable[[int, int], None]
BACKUP_TAKEN = f"{Backups.__module__}:Backups.Taken"


@dataclass(frozen=True)
class CheckedBackup:
    folder: Path
    manifest: Manifest
    practice: dict[str, Any]
    signing_keys: dict[str, bytes]  # key id -> PEM, opened under the master key
    witnessed: Witnessed


def check_backup(
    folder: Path,
    master_key: bytes,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    witnesses: Sequence[Vkey] = (),
) -> CheckedBackup:
    """``witnesses``: verifier keys the cosignatures by those witnesses must verify under."""
    manifest = read_manifest(folder)
    for entry in manifest.files:
        hash_file(folder, entry)
    practice = _practice(folder, manifest, trusted_key)
    history = _key_history(folder, manifest, practice["genesis_key_id"])
    signing_keys = _signing_keys(folder, manifest, master_key, history)
    _data_keys(folder, manifest, master_key)
    checkpoints = _checkpoints(folder, manifest, history)
    witnessed = _witnessed(folder, manifest, checkpoints, witnesses)
    _events(folder, manifest, checkpoints, progress)
    return CheckedBackup(folder, manifest, practice, signing_keys, witnessed)


def _practice(folder: Path, manifest: Manifest, trusted_key: str | None) -> dict[str, Any]:
    try:
        practice = json.loads((folder / PRACTICE).read_bytes())
        claimed = (practice["practice_id"], practice["origin"], practice["genesis_key_id"])
    except (ValueError, KeyError, TypeError):
        raise BackupInvalid(f"{PRACTICE} is not a practice file") from None
    if claimed != (manifest.practice_id, manifest.origin, manifest.genesis_key_id):
        raise BackupInvalid(f"{PRACTICE} names another practice than the manifest")
    if trusted_key is not None and practice["genesis_key_id"] != trusted_key:
        raise BackupInvalid(
            f"the backup's first signing key is {practice['genesis_key_id'][:16]}…, "
            f"the trusted key is {trusted_key[:16]}…"
        )
    return practice


def records(folder: Path, manifest: Manifest, name: str) -> Iterator[dict[str, Any]]:
    keys, types = {
        KEYS: (KEY_KEYS, KEY_TYPES),
        CHECKPOINTS: (CHECKPOINT_KEYS, CHECKPOINT_TYPES),
        DATA_KEYS: (DATA_KEY_KEYS, DATA_KEY_TYPES),
        SIGNING_KEYS: (SIGNING_KEY_KEYS, SIGNING_KEY_TYPES),
        COSIGNATURES: (COSIGNATURE_KEYS, COSIGNATURE_TYPES),
        TIMESTAMPS: (TIMESTAMP_KEYS, TIMESTAMP_TYPES),
    }[name]
    return read_records(folder, manifest.file(name), keys, types)


def _key_history(folder: Path, manifest: Manifest, genesis_key_id: str) -> list[KeyStatement]:
    rows = [
        (r["seq"], r["statement"], r["signature_self"], r["signature_prev"])
        for r in records(folder, manifest, KEYS)
    ]
    try:
        return verify_key_history(rows, genesis_key_id)
    except VerificationError as e:
        raise BackupInvalid(f"{KEYS}: {e}") from None


def _signing_keys(
    folder: Path, manifest: Manifest, master_key: bytes, history: list[KeyStatement]
) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for row in records(folder, manifest, SIGNING_KEYS):
        if row["key_id"] in keys:
            raise BackupInvalid(f"{SIGNING_KEYS}: key {row['key_id'][:16]}… is there twice")
        try:
            keys[row["key_id"]] = unwrap_signing_key(
                master_key, manifest.origin, row["key_id"], row["wrapped"]
            )
        except SigningKeyUnwrapError as e:
            raise BackupInvalid(f"{e}: is this the practice's master key?") from None
    wanted = {s.key_id for s in history}
    if set(keys) != wanted:
        raise BackupInvalid(
            f"{SIGNING_KEYS} holds {len(keys)} keys, the key history names {len(wanted)} others"
        )
    return keys


def _data_keys(folder: Path, manifest: Manifest, master_key: bytes) -> None:
    subjects: set[str] = set()
    for row in records(folder, manifest, DATA_KEYS):
        name, subject = row["name"], row["subject"]
        if name.rpartition("#")[0] != subject or subject in subjects:
            raise BackupInvalid(f"{DATA_KEYS}: a data key's name and owner do not agree")
        subjects.add(subject)
        try:
            unwrap_key(master_key, row["wrapped"], name=name, subject=subject)
        except KeyError_:
            raise BackupInvalid(
                "a data key does not unwrap under this master key: is it the practice's?"
            ) from None
        if not key_name_minted_here(master_key, name):
            raise BackupInvalid(f"{DATA_KEYS}: a data key's name was not minted by this practice")


def _checkpoints(
    folder: Path, manifest: Manifest, history: list[KeyStatement]
) -> dict[int, UnverifiedCheckpoint]:
    found: dict[int, UnverifiedCheckpoint] = {}
    for row in records(folder, manifest, CHECKPOINTS):
        where = f"checkpoint at size {row['size']}"
        try:
            checkpoint = parse_note(row["note"])
            if checkpoint.size != row["size"] or checkpoint.size in found:
                raise BackupInvalid(f"{where}: its note says size {checkpoint.size}")
            key = key_for_size(history, checkpoint.size)
            if checkpoint.origin != manifest.origin:
                raise BackupInvalid(f"{where}: origin is not the practice's")
            verify_checkpoint(checkpoint, key.public_key)
        except VerificationError as e:
            raise BackupInvalid(f"{where}: {e}") from None
        if checkpoint.size > manifest.tree_size:
            raise BackupInvalid(
                f"{where}: beyond the backup's tree size {manifest.tree_size} "
                "(events were left out)"
            )
        found[checkpoint.size] = checkpoint
    newest = max(found, default=None)
    if newest != manifest.newest_checkpoint:
        raise BackupInvalid(
            f"the newest checkpoint is at size {newest}, the manifest says "
            f"{manifest.newest_checkpoint}"
        )
    return found


def witness_records(folder: Path, manifest: Manifest, name: str) -> Iterator[dict[str, Any]]:
    """A version 2 file's records; a version 1 backup holds none."""
    return records(folder, manifest, name) if manifest.has(name) else iter(())


def _witnessed(
    folder: Path,
    manifest: Manifest,
    checkpoints: dict[int, UnverifiedCheckpoint],
    witnesses: Sequence[Vkey],
) -> Witnessed:
    cosignatures, verified = check_cosignatures(
        witness_records(folder, manifest, COSIGNATURES), checkpoints, witnesses
    )
    timestamps = check_timestamps(witness_records(folder, manifest, TIMESTAMPS), checkpoints)
    return Witnessed(cosignatures, verified, timestamps)


def event_rows(folder: Path, manifest: Manifest) -> Iterator[EventRow]:
    """Every event of the backup in position order, each file checked against the manifest."""
    for entry in manifest.chunks():
        for i, value in enumerate(read_records(folder, entry, EVENT_KEYS, EVENT_TYPES)):
            yield event_row(value, f"{entry.path} record {i}")


def _events(
    folder: Path,
    manifest: Manifest,
    checkpoints: dict[int, UnverifiedCheckpoint],
    progress: Progress | None,
) -> None:
    roots = LogRoots()
    size = manifest.tree_size
    if 0 in checkpoints:
        _at_checkpoint(checkpoints[0], roots)
    for row in event_rows(folder, manifest):
        where = f"position {row.position}"
        if row.position != roots.size:
            raise BackupInvalid(
                f"position {roots.size} is missing from the backup (the next is {row.position})"
            )
        try:
            header, header_bytes = _check_event(row, where)
            leaf = parse_leaf(row.leaf)
            if [link[0] for link in leaf.links] != list(header.subjects):
                raise BackupInvalid(f"{where}: the leaf links other subjects than its header")
            digest = hashlib.sha256(header_bytes).digest()
            if leaf.event != digest:
                raise BackupInvalid(
                    f"{where}: the leaf commits to event {short(leaf.event)}, "
                    f"the stored record's header hashes to {short(digest)}"
                )
            roots.add(row.position, row.leaf, [list(link) for link in leaf.links])
        except VerificationError as e:
            raise BackupInvalid(f"{where}: {e}") from None
        if row.position == manifest.backup_event and row.topic != BACKUP_TAKEN:
            raise BackupInvalid(f"{where}: the manifest names it the backup's own event")
        checkpoint = checkpoints.get(roots.size)
        if checkpoint is not None:
            _at_checkpoint(checkpoint, roots)
        if progress is not None and (roots.size % 1000 == 0 or roots.size == size):
            progress(roots.size, size)
    if roots.size != size:
        raise BackupInvalid(f"the backup holds {roots.size} events, the manifest says {size}")
    if (roots.root().hex(), roots.subjects_root().hex()) != (manifest.root, manifest.subjects_root):
        raise BackupInvalid(
            f"the events give root {short(roots.root())} at size {size}, "
            f"the manifest says {manifest.root[:16]}…"
        )


def _check_event(row: EventRow, where: str) -> tuple[Header, bytes]:
    header_bytes, sealed = split_record(row.state)
    header = parse_header(header_bytes)
    if (header.stream, header.version, header.type) != (row.stream, row.version, row.topic):
        raise BackupInvalid(f"{where}: the row's stream, version or topic is not its header's")
    if hashlib.sha256(sealed).digest() != header.sealed:
        raise BackupInvalid(f"{where}: the sealed payload does not hash to its header's")
    return header, header_bytes


def _at_checkpoint(checkpoint: UnverifiedCheckpoint, roots: LogRoots) -> None:
    if checkpoint.root != roots.root() or checkpoint.subjects_root != roots.subjects_root():
        raise BackupInvalid(
            f"checkpoint at size {checkpoint.size}: signed root {short(checkpoint.root)}, "
            f"the backup's events give {short(roots.root())}"
        )
