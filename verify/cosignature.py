"""Witness cosignatures (C2SP tlog-cosignature, Ed25519 ``cosignature/v1``) and verifier keys
(C2SP signed-note "vkeys"), as docs/WITNESS.md specifies them.

A cosignature is one more signed-note signature line on a checkpoint, by a witness:

    — <witness name> base64(key hash[4] || timestamp[8, big-endian] || Ed25519 signature[64])

signed over ``cosignature/v1\\ntime <timestamp>\\n`` followed by the checkpoint's whole body. What
it vouches for is the body's first three lines (origin, size, root): the witness saw that tree
and it was a consistent extension of every tree it saw before for that origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import NamedTuple

from verify.checkpoint import SIGNATURE_PREFIX
from verify.errors import MalformedInput, UnknownKey
from verify.signing import verify_signature

__all__ = [
    "COSIGNATURE_TYPE",
    "NOTE_ED25519_TYPE",
    "Cosignature",
    "Vkey",
    "cosignature_key_hash",
    "cosigned_message",
    "format_cosignature",
    "format_vkey",
    "parse_cosignature",
    "parse_vkey",
    "split_signed_note",
    "verify_cosignature",
]

NOTE_ED25519_TYPE = 0x01  # a log's (the practice's) own Ed25519 note signature
COSIGNATURE_TYPE = 0x04  # an Ed25519 cosignature/v1
MAX_TIMESTAMP = 2**63 - 1
_NAME_RE = re.compile(r"\A[\x21-\x2a\x2c-\x7e]+\Z")  # printable ASCII, no space, no '+'


class Cosignature(NamedTuple):
    name: str
    key_hash: bytes
    timestamp: int
    signature: bytes


class Vkey(NamedTuple):
    """A verifier key: ``<name>+<key hash, 8 hex digits>+<base64(type || public key)>``."""

    name: str
    key_type: int
    public_key: bytes

    @property
    def key_hash(self) -> bytes:
        return _key_hash(self.name, self.key_type, self.public_key)


def _key_hash(name: str, key_type: int, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public_key).digest()[:4]


def check_name(name: str) -> str:
    """A key name or origin that a signature line and a vkey can carry unambiguously."""
    if not _NAME_RE.match(name):
        raise MalformedInput(
            "a key name must be printable ASCII without spaces or '+' (e.g. example.com/w1)"
        )
    return name


def cosignature_key_hash(name: str, public_key: bytes) -> bytes:
    return _key_hash(name, COSIGNATURE_TYPE, public_key)


def cosigned_message(body: bytes, timestamp: int) -> bytes:
    """What the witness signs: the fixed header line, the time, then the checkpoint body."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise MalformedInput(f"cosignature time {timestamp} is out of range")
    return b"cosignature/v1\ntime " + str(timestamp).encode() + b"\n" + body


def format_cosignature(cosignature: Cosignature) -> str:
    """The signature line, ending in a newline."""
    blob = cosignature.key_hash + cosignature.timestamp.to_bytes(8, "big") + cosignature.signature
    return f"{SIGNATURE_PREFIX}{cosignature.name} {base64.b64encode(blob).decode()}\n"


def parse_cosignature(line: str) -> Cosignature:
    """A signature line (with or without its newline) that has the shape of a cosignature."""
    text = line.removesuffix("\n")
    if not text.startswith(SIGNATURE_PREFIX):
        raise MalformedInput("cosignature: a signature line starts with '— '")
    name, space, blob_text = text[len(SIGNATURE_PREFIX) :].partition(" ")
    if not space or not name or " " in blob_text:
        raise MalformedInput("cosignature: expected '— <name> <base64>'")
    blob = _b64(blob_text, "cosignature")
    if len(blob) != 4 + 8 + 64:
        raise MalformedInput(f"cosignature: {len(blob)} bytes, want 76")
    timestamp = int.from_bytes(blob[4:12], "big")
    if timestamp > MAX_TIMESTAMP:
        raise MalformedInput("cosignature: time is beyond 2^63 - 1")
    return Cosignature(name, blob[:4], timestamp, blob[12:])


def verify_cosignature(body: bytes, line: str, witness: Vkey) -> int:
    """Return the time of ``line``, a valid cosignature of ``body`` by ``witness``."""
    if witness.key_type != COSIGNATURE_TYPE:
        raise MalformedInput(f"witness key {witness.name}: type {witness.key_type}, want 4")
    cosignature = parse_cosignature(line)
    if cosignature.name != witness.name or cosignature.key_hash != witness.key_hash:
        raise UnknownKey(f"cosignature by {cosignature.name}: not witness {witness.name}'s key")
    message = cosigned_message(body, cosignature.timestamp)
    verify_signature(
        witness.public_key, cosignature.signature, message, f"cosignature by {witness.name}"
    )
    return cosignature.timestamp


def format_vkey(name: str, key_type: int, public_key: bytes) -> str:
    check_name(name)
    key_hash = _key_hash(name, key_type, public_key).hex()
    return f"{name}+{key_hash}+{base64.b64encode(bytes([key_type]) + public_key).decode()}"


def parse_vkey(text: str) -> Vkey:
    parts = text.strip().split("+", 2)  # base64 may hold "+", the name may not
    if len(parts) != 3:
        raise MalformedInput("a verifier key is <name>+<8 hex digits>+<base64>")
    name, hash_hex, blob_text = parts
    check_name(name)
    blob = _b64(blob_text, "verifier key")
    if len(blob) != 33 or blob[0] not in (NOTE_ED25519_TYPE, COSIGNATURE_TYPE):
        raise MalformedInput("a verifier key must hold an Ed25519 key (type 1 or 4)")
    vkey = Vkey(name, blob[0], blob[1:])
    if hash_hex != vkey.key_hash.hex():
        raise MalformedInput(f"verifier key {name}: key hash {hash_hex} does not match the key")
    return vkey


def split_signed_note(note: bytes) -> tuple[bytes, list[str]]:
    """(body, signature lines) of a signed note, each line without its newline."""
    try:
        text = note.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("signed note is not UTF-8") from None
    body, sep, signatures = text.partition("\n\n")
    if not sep or not signatures.endswith("\n") or not body:
        raise MalformedInput("signed note: no blank line before the signatures")
    lines = signatures[:-1].split("\n")
    if any(not line.startswith(SIGNATURE_PREFIX) for line in lines):
        raise MalformedInput("signed note: every signature line starts with '— '")
    return (body + "\n").encode(), lines


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput(f"{what} is not base64") from None
