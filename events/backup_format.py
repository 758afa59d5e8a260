"""The backup folder (docs/BACKUP_FORMAT.md): its files, their records, and the manifest.

Every record file is a sequence of canonical msgpack maps (LEDGER_FORMAT.md §2), one per row,
written and read one record at a time so memory stays flat however large the store. Each file's
SHA-256 and length are in ``manifest.json``; a reader hashes every byte it reads and refuses a
file whose bytes differ from what the manifest says.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

from events.private_files import private_binary
from verify.canonical import pack_ordered

FORMAT = "chartledger-backup"
FORMAT_VERSION = 2
# Version 1 had no cosignatures or timestamps; such a backup is still read (as holding none).
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
PRACTICE = "practice.json"
KEYS = "keys.msgpack"
CHECKPOINTS = "checkpoints.msgpack"
DATA_KEYS = "data_keys.msgpack"
SIGNING_KEYS = "signing_keys.msgpack"
COSIGNATURES = "cosignatures.msgpack"  # from version 2
TIMESTAMPS = "timestamps.msgpack"  # from version 2
EVENTS_DIR = "events"
CHUNK_EVENTS = 10_000  # events per chunk file
READ_BLOCK = 1 << 20
MAX_RECORD = 256 << 20  # an event's stored record is far smaller; a bound, not a limit in use

# Each record's keys in canonical order (by UTF-8 length, then bytes: LEDGER_FORMAT.md §2).
EVENT_KEYS = ("leaf", "state", "topic", "stream", "version", "position")
KEY_KEYS = ("seq", "statement", "signature_prev", "signature_self")
CHECKPOINT_KEYS = ("note", "size")
DATA_KEY_KEYS = ("name", "subject", "wrapped")
SIGNING_KEY_KEYS = ("key_id", "wrapped")
COSIGNATURE_KEYS = ("line", "size", "witness")
TIMESTAMP_KEYS = ("tsa", "size", "response")
_FILE_NAME = re.compile(r"\A(?:[a-z_]+\.(?:json|msgpack)|events/[0-9]{8}\.msgpack)\Z")
_HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")


class BackupError(ValueError):
    """A backup or restore that cannot go ahead; the message says why, without PHI."""


class BackupInvalid(BackupError):
    """The backup folder is incomplete, altered, or not one this version can restore."""


def chunk_name(index: int) -> str:
    return f"{EVENTS_DIR}/{index:08d}.msgpack"


def event_record(
    position: int, stream: str, version: int, topic: str, state: bytes, leaf: bytes
) -> bytes:
    """One event and its leaf, as the chunk files hold them (keys in EVENT_KEYS order)."""
    return pack_ordered(
        {
            "leaf": leaf,
            "state": state,
            "topic": topic,
            "stream": stream,
            "version": version,
            "position": position,
        }
    )


@dataclass(frozen=True)
class EventRow:
    position: int
    stream: str  # 36-character lowercase hyphenated UUID
    version: int
    topic: str
    state: bytes
    leaf: bytes


_STREAM = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
EVENT_TYPES = {
    "leaf": bytes,
    "state": bytes,
    "topic": str,
    "stream": str,
    "version": int,
    "position": int,
}
KEY_TYPES = {
    "seq": int,
    "statement": bytes,
    "signature_prev": (bytes, type(None)),
    "signature_self": bytes,
}
CHECKPOINT_TYPES = {"note": bytes, "size": int}
DATA_KEY_TYPES = {"name": str, "subject": str, "wrapped": bytes}
SIGNING_KEY_TYPES = {"key_id": str, "wrapped": bytes}
COSIGNATURE_TYPES = {"line": str, "size": int, "witness": str}
TIMESTAMP_TYPES = {"tsa": str, "size": int, "response": bytes}


def event_row(value: dict[str, Any], where: str) -> EventRow:
    """A chunk record (already checked by ``read_records``) as an EventRow."""
    if not _STREAM.match(value["stream"]):
        raise BackupInvalid(f"{where}: stream is not a lowercase hyphenated UUID")
    if value["version"] < 1 or value["position"] < 0:
        raise BackupInvalid(f"{where}: version or position out of range")
    return EventRow(
        value["position"],
        value["stream"],
        value["version"],
        value["topic"],
        value["state"],
        value["leaf"],
    )


def _check_types(value: Any, keys: tuple[str, ...], types: dict[str, Any], where: str) -> None:
    if type(value) is not dict or tuple(value) != keys:
        raise BackupInvalid(f"{where}: not a map with exactly the keys {', '.join(keys)} in order")
    for key in keys:
        kinds = types[key] if isinstance(types[key], tuple) else (types[key],)
        if type(value[key]) not in kinds:
            raise BackupInvalid(f"{where}: {key} is not {' or '.join(k.__name__ for k in kinds)}")


# -- files: written with their hash, read back against it ---------------------------------------


class RecordWriter:
    """Appends records to one new file (mode 0600), hashing the bytes as they go out."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = name
        path = folder / name
        self._file: BinaryIO = private_binary(path, buffering=READ_BLOCK)
        self._hash = hashlib.sha256()
        self.bytes = 0
        self.records = 0

    def write(self, record: bytes) -> None:
        self._file.write(record)
        self._hash.update(record)
        self.bytes += len(record)
        self.records += 1

    def close(self) -> FileEntry:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        return FileEntry(self.name, self._hash.hexdigest(), self.bytes, self.records)


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    bytes: int
    records: int

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "bytes": self.bytes,
            "records": self.records,
        }


class _HashingReader:
    """A file object that hashes what msgpack's Unpacker reads from it."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.hash = hashlib.sha256()
        self.bytes = 0

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self.hash.update(data)
        self.bytes += len(data)
        return data


def _refuse_ext(code: int, data: bytes) -> Any:
    raise BackupInvalid(f"msgpack extension type {code} is not allowed")


def read_records(
    folder: Path, entry: FileEntry, keys: tuple[str, ...], types: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    """Each record of one file, in order, checked for its keys (in canonical order) and types.

    The file's bytes are hashed as they are read, and each record's canonical encoding is
    hashed too; once the last record is read both must equal the manifest's SHA-256, so the
    file is exactly the canonical encoding of the records it yielded (BackupInvalid if not).
    """
    path = folder / entry.path
    try:
        file = path.open("rb")
    except OSError:
        raise BackupInvalid(f"{entry.path} is missing from the backup") from None
    canonical = hashlib.sha256()
    with file:
        reader = _HashingReader(file)
        unpacker = msgpack.Unpacker(
            reader,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            read_size=READ_BLOCK,
            max_buffer_size=MAX_RECORD,
        )
        count = 0
        try:
            for value in unpacker:
                where = f"{entry.path} record {count}"
                _check_types(value, keys, types, where)
                canonical.update(pack_ordered(value))
                count += 1
                yield value
        except (ValueError, msgpack.UnpackException) as e:
            raise BackupInvalid(f"{entry.path}: not a sequence of msgpack records: {e}") from None
        _check_whole(entry, reader, count)
    if canonical.hexdigest() != entry.sha256:
        raise BackupInvalid(f"{entry.path}: records are not in their canonical encoding")


def _check_whole(entry: FileEntry, reader: _HashingReader, count: int) -> None:
    digest = reader.hash.hexdigest()
    if reader.bytes != entry.bytes or digest != entry.sha256:
        raise BackupInvalid(
            f"{entry.path}: SHA-256 is {digest[:16]}… over {reader.bytes} bytes, "
            f"the manifest says {entry.sha256[:16]}… over {entry.bytes} bytes"
        )
    if count != entry.records:
        raise BackupInvalid(f"{entry.path}: {count} records, the manifest says {entry.records}")


def hash_file(folder: Path, entry: FileEntry) -> None:
    """Check one file's length and SHA-256 against the manifest, reading it in blocks."""
    path = folder / entry.path
    try:
        file = path.open("rb")
    except OSError:
        raise BackupInvalid(f"{entry.path} is missing from the backup") from None
    with file:
        reader = _HashingReader(file)
        while reader.read(READ_BLOCK):
            pass
    digest = reader.hash.hexdigest()
    if reader.bytes != entry.bytes or digest != entry.sha256:
        raise BackupInvalid(
            f"{entry.path}: SHA-256 is {digest[:16]}… over {reader.bytes} bytes, "
            f"the manifest says {entry.sha256[:16]}… over {entry.bytes} bytes"
        )


# -- the manifest ------------------------------------------------------------------------------


@dataclass
class Manifest:
    practice_id: str
    origin: str
    genesis_key_id: str
    created: str
    source: str  # "sqlite" or "postgresql"
    tree_size: int
    root: str  # hex
    subjects_root: str  # hex
    newest_checkpoint: int | None  # its size
    backup_event: int | None  # position of the Backups.Taken event this backup includes
    counts: dict[str, int]
    files: list[FileEntry] = field(default_factory=list)
    version: int = FORMAT_VERSION

    def has(self, name: str) -> bool:
        return any(entry.path == name for entry in self.files)

    def file(self, name: str) -> FileEntry:
        for entry in self.files:
            if entry.path == name:
                return entry
        raise BackupInvalid(f"the manifest lists no {name}")

    def chunks(self) -> list[FileEntry]:
        return [e for e in self.files if e.path.startswith(EVENTS_DIR + "/")]

    def to_bytes(self) -> bytes:
        value = {
            "format": FORMAT,
            "version": self.version,
            "practice_id": self.practice_id,
            "origin": self.origin,
            "genesis_key_id": self.genesis_key_id,
            "created": self.created,
            "source": self.source,
            "tree_size": self.tree_size,
            "root": self.root,
            "subjects_root": self.subjects_root,
            "newest_checkpoint": self.newest_checkpoint,
            "backup_event": self.backup_event,
            "counts": self.counts,
            "files": [e.as_json() for e in self.files],
        }
        return json.dumps(value, indent=2).encode() + b"\n"


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BackupInvalid(
            f"{folder} holds no {MANIFEST}: not a backup, or an unfinished one"
        ) from None
    except (OSError, ValueError) as e:
        raise BackupInvalid(f"{MANIFEST} is not readable JSON: {e}") from None
    if not isinstance(value, dict) or value.get("format") != FORMAT:
        raise BackupInvalid(f"{MANIFEST} is not a {FORMAT} manifest")
    version = value.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise BackupInvalid(
            f"backup format version {version!r}; this restore reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))} only"
        )
    try:
        manifest = Manifest(
            practice_id=_text(value, "practice_id"),
            origin=_text(value, "origin"),
            genesis_key_id=_text(value, "genesis_key_id"),
            created=_text(value, "created"),
            source=_text(value, "source"),
            tree_size=_count(value, "tree_size"),
            root=_hex64(value, "root"),
            subjects_root=_hex64(value, "subjects_root"),
            newest_checkpoint=_optional_count(value, "newest_checkpoint"),
            backup_event=_optional_count(value, "backup_event"),
            counts={k: _count(value["counts"], k) for k in count_names(version)},
            files=[_file_entry(e) for e in value["files"]],
            version=version,
        )
    except (KeyError, TypeError) as e:
        raise BackupInvalid(f"{MANIFEST} lacks or mistypes {e}") from None
    _check_file_list(manifest)
    return manifest


COUNT_NAMES = ("events", "checkpoints", "key_statements", "data_keys", "signing_keys")
WITNESS_COUNTS = {"cosignatures": COSIGNATURES, "timestamps": TIMESTAMPS}  # from version 2


def count_names(version: int) -> tuple[str, ...]:
    return COUNT_NAMES if version == 1 else (*COUNT_NAMES, *WITNESS_COUNTS)


def required_files(version: int) -> tuple[str, ...]:
    files = (PRACTICE, KEYS, CHECKPOINTS, DATA_KEYS, SIGNING_KEYS)
    return files if version == 1 else (*files, COSIGNATURES, TIMESTAMPS)


def _text(value: dict[str, Any], key: str) -> str:
    if type(value[key]) is not str:
        raise TypeError(key)
    return value[key]


def _count(value: dict[str, Any], key: str) -> int:
    if type(value[key]) is not int or value[key] < 0:
        raise TypeError(key)
    return value[key]


def _optional_count(value: dict[str, Any], key: str) -> int | None:
    return None if value[key] is None else _count(value, key)


def _hex64(value: dict[str, Any], key: str) -> str:
    if type(value[key]) is not str or not _HEX64.match(value[key]):
        raise TypeError(key)
    return value[key]


def _file_entry(value: dict[str, Any]) -> FileEntry:
    path = _text(value, "path")
    if not _FILE_NAME.match(path):
        raise BackupInvalid(f"{MANIFEST} names a file outside the backup's layout: {path!r}")
    return FileEntry(
        path, _hex64(value, "sha256"), _count(value, "bytes"), _count(value, "records")
    )


def _check_file_list(manifest: Manifest) -> None:
    names = [e.path for e in manifest.files]
    if len(set(names)) != len(names):
        raise BackupInvalid(f"{MANIFEST} lists a file twice")
    for name in required_files(manifest.version):
        manifest.file(name)
    if manifest.version == 1 and (manifest.has(COSIGNATURES) or manifest.has(TIMESTAMPS)):
        raise BackupInvalid(f"{MANIFEST}: a version 1 backup holds no cosignatures or timestamps")
    for count, name in WITNESS_COUNTS.items():
        if manifest.has(name) and manifest.file(name).records != manifest.counts[count]:
            raise BackupInvalid(f"{MANIFEST}: counts.{count} is not the records of {name}")
    chunks = manifest.chunks()
    if [e.path for e in chunks] != [chunk_name(i) for i in range(len(chunks))]:
        raise BackupInvalid(f"{MANIFEST}: event chunks are not numbered 0, 1, 2, … in order")
    if sum(e.records for e in chunks) != manifest.counts["events"]:
        raise BackupInvalid(f"{MANIFEST}: the chunks hold a different number of events")
    if manifest.counts["events"] != manifest.tree_size:
        raise BackupInvalid(
            f"{MANIFEST}: {manifest.counts['events']} events at tree size {manifest.tree_size}"
        )
