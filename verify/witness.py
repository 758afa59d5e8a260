"""Checking a log against a checkpoint held outside it (docs/WITNESS.md §5).

A checkpoint an attorney, a witness or a second practice keeps is the one thing a database
superuser cannot roll back: the store must still hold that tree, as a prefix of its own. Here a
checkpoint file is split into the log's own signature lines and the rest (cosignatures), the
log's signature is checked against the key history, and the store's root at the checkpoint's
size is compared with the checkpoint's.
"""

from __future__ import annotations

import base64
import binascii
from typing import NamedTuple

from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
from verify.cosignature import Vkey, parse_cosignature, split_signed_note, verify_cosignature
from verify.errors import (
    ChainBroken,
    MalformedInput,
    ProofInvalid,
    UnknownKey,
    VerificationError,
)
from verify.hashing import short
from verify.keyhistory import KeyStatement, key_for_size

__all__ = [
    "OutsideCheckpoint",
    "check_against_log",
    "check_cosignatures",
    "check_witnessed_checkpoint",
    "read_outside_checkpoint",
]

LOG_SIGNATURE_SIZE = 4 + 64


class OutsideCheckpoint(NamedTuple):
    checkpoint: UnverifiedCheckpoint  # with the log's own signature lines only
    other_lines: tuple[str, ...]  # every other signature line: cosignatures, unknown signers

    @property
    def where(self) -> str:
        return f"outside checkpoint at size {self.checkpoint.size}"


def read_outside_checkpoint(note: bytes) -> OutsideCheckpoint:
    """Parse a checkpoint file: a signed note whose lines by the origin with a 68-byte blob are
    the log's signatures, and whose other lines are kept aside for ``check_cosignatures``."""
    body, lines = split_signed_note(note)
    origin = body.split(b"\n", 1)[0].decode()
    own: list[str] = []
    other: list[str] = []
    for line in lines:
        name, _, blob = line[2:].partition(" ")
        (own if name == origin and _blob_size(blob) == LOG_SIGNATURE_SIZE else other).append(line)
    if not own:
        raise MalformedInput(f"the checkpoint carries no signature line by its origin {origin}")
    checkpoint = parse_note(body + b"\n" + "".join(line + "\n" for line in own).encode())
    return OutsideCheckpoint(checkpoint, tuple(other))


def _blob_size(text: str) -> int:
    try:
        return len(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        return -1


def check_cosignatures(outside: OutsideCheckpoint, witnesses: list[Vkey]) -> dict[str, int]:
    """Every trusted witness must have cosigned: return {witness name: cosignature time}.

    Lines by other names, or by a trusted name under another key, are ignored, as signed-note
    says; a line by a trusted witness's key that does not verify is an error.
    """
    times: dict[str, int] = {}
    for witness in witnesses:
        for line in outside.other_lines:
            try:
                candidate = parse_cosignature(line)
            except MalformedInput:
                continue
            if candidate.name == witness.name and candidate.key_hash == witness.key_hash:
                times[witness.name] = verify_cosignature(outside.checkpoint.body, line, witness)
                break
        else:
            raise UnknownKey(f"no cosignature by trusted witness {witness.name}")
    return times


def check_against_log(
    outside: OutsideCheckpoint,
    history: list[KeyStatement],
    log_size: int,
    roots_at_size: tuple[bytes, bytes] | None,
) -> list[VerificationError]:
    """What is wrong with the log (``log_size`` leaves; its root and subject-heads root at the
    checkpoint's size, when it has that many) against a checkpoint held outside it."""
    checkpoint = outside.checkpoint
    problems: list[VerificationError] = []
    if history:
        key = key_for_size(history, checkpoint.size)
        if checkpoint.origin != key.origin:
            problems.append(
                ProofInvalid(f"origin is {checkpoint.origin!r}, the log's is {key.origin!r}")
            )
        else:
            try:
                verify_checkpoint(checkpoint, key.public_key)
            except VerificationError as e:
                problems.append(e)
    if log_size < checkpoint.size:
        problems.append(
            ChainBroken(
                f"rolled back: the log has {log_size} leaves, the checkpoint held outside "
                f"was signed at size {checkpoint.size}"
            )
        )
        return problems
    assert roots_at_size is not None
    root, heads_root = roots_at_size
    if checkpoint.root != root:
        problems.append(
            ProofInvalid(
                f"rewritten: root at size {checkpoint.size} is {short(root)}, "
                f"the checkpoint held outside says {short(checkpoint.root)}"
            )
        )
    if checkpoint.subjects_root != heads_root:
        problems.append(
            ProofInvalid(
                f"rewritten: subject-heads root at size {checkpoint.size} is {short(heads_root)}, "
                f"the checkpoint held outside says {short(checkpoint.subjects_root)}"
            )
        )
    return problems


def check_witnessed_checkpoint(
    note: bytes, log_public_key: bytes, witnesses: list[Vkey]
) -> tuple[UnverifiedCheckpoint, dict[str, int]]:
    """For a bundle (or anyone holding one checkpoint): the log's signature by
    ``log_public_key`` and a valid cosignature by every one of ``witnesses``.
    Returns the checkpoint and {witness name: cosignature time}; raises a VerificationError."""
    outside = read_outside_checkpoint(note)
    verify_checkpoint(outside.checkpoint, log_public_key)
    return outside.checkpoint, check_cosignatures(outside, witnesses)
