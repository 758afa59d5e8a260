"""Ed25519 signatures and key names (docs/LEDGER_FORMAT.md §8, §9).

Only this module and events/keys.py import cryptography.hazmat.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from verify.errors import MalformedInput, SignatureInvalid

__all__ = ["key_id", "note_key_hash", "verify_signature"]

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
# signed-note's signature type byte for Ed25519 (https://c2sp.org/signed-note).
ED25519_NOTE_TYPE = b"\x01"


def key_id(public_key: bytes) -> str:
    """Hex of H(public key): the name a key goes by in checkpoints and the key history."""
    return hashlib.sha256(public_key).hexdigest()


def note_key_hash(origin: str, public_key: bytes) -> bytes:
    """The 4-byte key hash of a signed-note signature line."""
    return hashlib.sha256(origin.encode() + b"\n" + ED25519_NOTE_TYPE + public_key).digest()[:4]


def verify_signature(public_key: bytes, signature: bytes, message: bytes, what: str) -> None:
    """Return None if ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedInput(f"{what}: public key is {len(public_key)} bytes, want 32")
    if len(signature) != SIGNATURE_SIZE:
        raise SignatureInvalid(f"{what}: signature is {len(signature)} bytes, want 64")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except InvalidSignature:
        raise SignatureInvalid(
            f"{what}: signature is invalid for key {key_id(public_key)[:16]}…"
        ) from None
