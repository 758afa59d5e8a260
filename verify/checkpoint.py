"""Checkpoints as C2SP signed notes (docs/LEDGER_FORMAT.md §8).

``parse_note`` only parses; ``verify_checkpoint`` checks the signature against a given key.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import NamedTuple

from verify.canonical import parse_timestamp
from verify.errors import MalformedInput, UnknownKey
from verify.signing import key_id, note_key_hash, verify_signature

__all__ = ["UnverifiedCheckpoint", "format_body", "format_note", "parse_note", "verify_checkpoint"]

SIGNATURE_PREFIX = "— "
_SIZE_RE = re.compile(r"\A(0|[1-9][0-9]{0,19})\Z")


class UnverifiedCheckpoint(NamedTuple):
    origin: str
    size: int
    root: bytes
    subjects_root: bytes
    time: str
    key_id: str
    body: bytes
    signatures: tuple[tuple[str, bytes, bytes], ...]  # (key name, key hash, signature)


def format_body(
    origin: str, size: int, root: bytes, subjects_root: bytes, time: str, signer: str
) -> bytes:
    lines = [
        origin,
        str(size),
        base64.b64encode(root).decode(),
        "subjects " + base64.b64encode(subjects_root).decode(),
        "time " + time,
        "key " + signer,
    ]
    return ("\n".join(lines) + "\n").encode()


def format_note(body: bytes, origin: str, key_hash: bytes, signature: bytes) -> bytes:
    line = f"{SIGNATURE_PREFIX}{origin} {base64.b64encode(key_hash + signature).decode()}\n"
    return body + b"\n" + line.encode()


def _b64(text: str, size: int, what: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput(f"malformed checkpoint: {what} is not base64") from None
    if len(raw) != size:
        raise MalformedInput(f"malformed checkpoint: {what} is {len(raw)} bytes, want {size}")
    return raw


def _extension(line: str, name: str) -> str:
    if not line.startswith(name + " "):
        raise MalformedInput(f"malformed checkpoint: expected a '{name}' line")
    return line[len(name) + 1 :]


def parse_note(note: bytes) -> UnverifiedCheckpoint:
    """Split a signed note into its checkpoint fields and signature lines."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("malformed checkpoint: not UTF-8") from None
    body_text, sep, sig_text = text.partition("\n\n")
    if not sep or not sig_text.endswith("\n"):
        raise MalformedInput("malformed checkpoint: no blank line before the signatures")
    lines = body_text.split("\n")
    if len(lines) != 6:
        raise MalformedInput(f"malformed checkpoint: {len(lines)} body lines, want 6")
    origin, size_text, root_text, subjects_line, time_line, key_line = lines
    if not origin or " " in origin:
        raise MalformedInput("malformed checkpoint: invalid origin")
    if not _SIZE_RE.match(size_text):
        raise MalformedInput("malformed checkpoint: invalid log size")
    time = _extension(time_line, "time")
    parse_timestamp(time)
    signatures = []
    for line in sig_text[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise MalformedInput("malformed checkpoint: signature line must start with '— '")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        raw = _b64(blob, 68, "signature")
        signatures.append((name, raw[:4], raw[4:]))
    return UnverifiedCheckpoint(
        origin=origin,
        size=int(size_text),
        root=_b64(root_text, 32, "root hash"),
        subjects_root=_b64(_extension(subjects_line, "subjects"), 32, "subjects root"),
        time=time,
        key_id=_extension(key_line, "key"),
        body=(body_text + "\n").encode(),
        signatures=tuple(signatures),
    )


def verify_checkpoint(checkpoint: UnverifiedCheckpoint, public_key: bytes) -> None:
    """Return None if the checkpoint carries a valid signature by ``public_key`` for its origin."""
    what = f"checkpoint at size {checkpoint.size}"
    if checkpoint.key_id != key_id(public_key):
        raise UnknownKey(
            f"{what}: names key {checkpoint.key_id[:16]}…, expected {key_id(public_key)[:16]}…"
        )
    want = note_key_hash(checkpoint.origin, public_key)
    for name, key_hash, signature in checkpoint.signatures:
        if name == checkpoint.origin and key_hash == want:
            verify_signature(public_key, signature, checkpoint.body, what)
            return
    raise UnknownKey(f"{what}: no signature line by key {key_id(public_key)[:16]}…")
