"""Checking a backup's cosignatures and timestamps (docs/BACKUP_FORMAT.md §6.1, §9 step 7a).

They are evidence about the checkpoints, kept outside the practice too, so a restore must neither
lose them nor bring back ones that were altered. A cosignature by a witness whose verifier key
the restorer knows (the new home's ``witnesses.json``, or ``--trusted-witness``) must verify
against the checkpoint note of its size; any other must at least be a well-formed cosignature
line by the witness it is filed under, about a checkpoint the backup holds. A timestamp must be
a granted RFC 3161 response whose message imprint is the hash of that checkpoint's body (its
TSA signature needs the TSA's roots, which the backup does not hold).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.x509 import ObjectIdentifier
from rfc3161_client import decode_timestamp_response
from rfc3161_client.tsp import PKIStatus

from events.backup_format import COSIGNATURES, TIMESTAMPS, BackupError, BackupInvalid
from verify.checkpoint import UnverifiedCheckpoint
from verify.cosignature import (
    COSIGNATURE_TYPE,
    Vkey,
    check_name,
    parse_cosignature,
    parse_vkey,
    verify_cosignature,
)
from verify.errors import VerificationError

WITNESSES_FILE = "witnesses.json"  # events.witnessing.CONFIG_FILE, read here without the TSA
_HASHES = {
    ObjectIdentifier("2.16.840.1.101.3.4.2.1"): "sha256",
    ObjectIdentifier("2.16.840.1.101.3.4.2.2"): "sha384",
    ObjectIdentifier("2.16.840.1.101.3.4.2.3"): "sha512",
}


@dataclass(frozen=True)
class Witnessed:
    cosignatures: int
    verified: int  # of them, checked against a witness key the restorer knows
    timestamps: int


def known_witnesses(home: Path, given: Iterable[str] = ()) -> list[Vkey]:
    """Witness keys from ``given`` vkey texts and the home's witnesses.json, if it has one."""
    texts = list(given)
    path = home / WITNESSES_FILE
    try:
        if path.exists():
            texts += [w["vkey"] for w in json.loads(path.read_text()).get("witnesses", [])]
        return [parse_vkey(text) for text in texts]
    except (OSError, ValueError, KeyError, TypeError, AttributeError, VerificationError) as e:
        raise BackupError(f"a witness key cannot be used: {type(e).__name__}: {e}") from None


def check_cosignatures(
    rows: Iterator[dict[str, Any]],
    checkpoints: dict[int, UnverifiedCheckpoint],
    witnesses: Iterable[Vkey],
) -> tuple[int, int]:
    """(cosignatures, verified) of the backup's records, or a BackupInvalid naming the bad one."""
    keys: dict[str, list[Vkey]] = {}
    for vkey in witnesses:
        if vkey.key_type == COSIGNATURE_TYPE:
            keys.setdefault(vkey.name, []).append(vkey)
    seen: set[tuple[int, str]] = set()
    last, count, verified = -1, 0, 0
    for row in rows:
        size, witness, line = row["size"], row["witness"], row["line"]
        where = f"{COSIGNATURES}: the cosignature by {witness!r} at size {size}"
        if size < last or (size, witness) in seen:
            raise BackupInvalid(f"{where} is out of order or there twice")
        seen.add((size, witness))
        last = size
        checkpoint = checkpoints.get(size)
        if checkpoint is None:
            raise BackupInvalid(f"{where} is of a checkpoint the backup does not hold")
        try:
            check_name(witness)
            if "\n" in line or parse_cosignature(line).name != witness:
                raise BackupInvalid(f"{where} is not a cosignature line by that witness")
            if witness in keys:
                _verify(checkpoint.body, line, keys[witness], where)
                verified += 1
        except VerificationError as e:
            raise BackupInvalid(f"{where} is malformed: {e}") from None
        count += 1
    return count, verified


def _verify(body: bytes, line: str, vkeys: list[Vkey], where: str) -> None:
    for vkey in vkeys:
        try:
            verify_cosignature(body, line, vkey)
            return
        except VerificationError:
            continue
    raise BackupInvalid(f"{where} does not verify under the witness's key")


def check_timestamps(
    rows: Iterator[dict[str, Any]], checkpoints: dict[int, UnverifiedCheckpoint]
) -> int:
    seen: set[tuple[int, str]] = set()
    last, count = -1, 0
    for row in rows:
        size, tsa = row["size"], row["tsa"]
        where = f"{TIMESTAMPS}: the timestamp by {tsa!r} at size {size}"
        if size < last or (size, tsa) in seen or not tsa:
            raise BackupInvalid(f"{where} is out of order, there twice, or names no TSA")
        seen.add((size, tsa))
        last = size
        checkpoint = checkpoints.get(size)
        if checkpoint is None:
            raise BackupInvalid(f"{where} is of a checkpoint the backup does not hold")
        try:
            decoded = decode_timestamp_response(row["response"])
            status = decoded.status
            imprint = decoded.tst_info.message_imprint
            algorithm = _HASHES.get(imprint.hash_algorithm)
            message = imprint.message
        except ValueError:
            raise BackupInvalid(f"{where} is not an RFC 3161 response") from None
        if status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            raise BackupInvalid(f"{where} is not a granted response")
        if algorithm is None or hashlib.new(algorithm, checkpoint.body).digest() != message:
            raise BackupInvalid(f"{where} is not of that checkpoint's body")
        count += 1
    return count
