"""The native half of an EHI export: the ledger's own records, so that a recipient can check
every commitment, digest, leaf and signature itself (docs/EHI_EXPORT.md §7).

Every file is a sequence of canonical msgpack maps (LEDGER_FORMAT.md §2), one after another.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, Any

from events.db import Cursor
from events.log import completeness_proof
from events.private_files import private_binary
from verify.canonical import encode, pack_ordered

RECORDS = "records.msgpack"
CHECKPOINTS = "checkpoints.msgpack"
KEYS = "keys.msgpack"
COMPLETENESS = "completeness.msgpack"


class NativeFile:
    """One native file being written: its count of values and its SHA-256 as it grows."""

    def __init__(self, folder: Path, name: str) -> None:
        self.name = name
        self.count = 0
        self._hash = hashlib.sha256()
        self._file: IO[bytes] = private_binary(folder / name)

    def add(self, packed: bytes) -> None:
        self._file.write(packed)
        self._hash.update(packed)
        self.count += 1

    def close(self) -> dict[str, Any]:
        self._file.close()
        return {
            "type": self.name.split(".")[0],
            "url": f"native/{self.name}",
            "count": self.count,
            "sha256": self._hash.hexdigest(),
        }


def record(
    position: int, leaf: bytes, header: bytes, salt: bytes | None, payload: bytes | None
) -> bytes:
    """One event as stored: salt and payload are nil when its data key was disposed of."""
    # Keys in canonical order: leaf, salt (4 bytes), header, payload, position.
    return pack_ordered(
        {"leaf": leaf, "salt": salt, "header": header, "payload": payload, "position": position}
    )


def write_checkpoints(cursor: Cursor, folder: Path, size: int) -> dict[str, Any]:
    """Every signed checkpoint of a tree no larger than the export's log size."""
    out = NativeFile(folder, CHECKPOINTS)
    cursor.execute(
        "SELECT size, note FROM ledger_checkpoints WHERE size <= ? ORDER BY size", (size,)
    )
    for found, note in cursor.fetchall():
        out.add(encode({"note": bytes(note), "size": found}))
    return out.close()


def write_keys(cursor: Cursor, folder: Path) -> dict[str, Any]:
    """The key history (LEDGER_FORMAT.md §9): statements with both signatures."""
    out = NativeFile(folder, KEYS)
    cursor.execute(
        "SELECT seq, statement, signature_self, signature_prev FROM ledger_keys ORDER BY seq"
    )
    for seq, statement, signature_self, signature_prev in cursor.fetchall():
        out.add(
            encode(
                {
                    "seq": seq,
                    "statement": bytes(statement),
                    "signature_prev": None if signature_prev is None else bytes(signature_prev),
                    "signature_self": bytes(signature_self),
                }
            )
        )
    return out.close()


def write_completeness(cursor: Cursor, folder: Path, subject: str, size: int) -> dict[str, Any]:
    """The subject's completeness proof (§7) at the newest checkpoint no larger than ``size``
    that the subject appears below; an empty file if there is none yet."""
    out = NativeFile(folder, COMPLETENESS)
    cursor.execute(
        "SELECT c.size FROM ledger_checkpoints c WHERE c.size <= ? AND EXISTS ("
        "SELECT 1 FROM ledger_links l WHERE l.subject = ? AND l.position < c.size) "
        "ORDER BY c.size DESC LIMIT 1",
        (size, subject),
    )
    row = cursor.fetchone()
    if row is not None:
        at = int(row[0])
        proof = completeness_proof(cursor, subject, at)
        out.add(
            encode(
                {
                    "seq": proof.seq,
                    "size": at,
                    "leaves": [
                        {"leaf": p.leaf, "proof": list(p.proof), "position": p.position}
                        for p in proof.leaves
                    ],
                    "subject": proof.subject,
                    "heads_size": proof.heads_size,
                    "head_index": proof.head_index,
                    "head_proof": list(proof.head_proof),
                    "last_position": proof.last_position,
                }
            )
        )
    return out.close()
