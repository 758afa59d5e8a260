"""Signing keys in a backup: each PEM file sealed under a key derived from the master key.

The master key itself never goes into a backup. A signing key travels as
``nonce || AES-256-GCM(K, nonce, PEM bytes, aad)`` with ``K = HMAC-SHA256(master key,
WRAP_LABEL)`` and ``aad`` the canonical map ``{"key_id": ..., "origin": ...}``
(docs/BACKUP_FORMAT.md §5), so a wrapped key opens only under this practice's master key and
only as the key it claims to be.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import tempfile
from pathlib import Path

from events.keys import SigningKey, aead_open, aead_seal
from verify.canonical import encode

WRAP_LABEL = b"chartledger backup signing key wrap\x00v1"
NONCE_SIZE = 12


class SigningKeyUnwrapError(ValueError):
    """A wrapped signing key does not open under this master key, or is not the key it names."""


def wrapping_key(master_key: bytes) -> bytes:
    return hmac.new(master_key, WRAP_LABEL, hashlib.sha256).digest()


def _aad(key_id: str, origin: str) -> bytes:
    return encode({"key_id": key_id, "origin": origin})


def wrap_signing_key(master_key: bytes, origin: str, key_id: str, pem: bytes) -> bytes:
    nonce = os.urandom(NONCE_SIZE)
    return nonce + aead_seal(wrapping_key(master_key), nonce, pem, _aad(key_id, origin))


def unwrap_signing_key(master_key: bytes, origin: str, key_id: str, wrapped: bytes) -> bytes:
    """The PEM bytes, after checking they hold the Ed25519 key whose id is ``key_id``."""
    nonce, sealed = wrapped[:NONCE_SIZE], wrapped[NONCE_SIZE:]
    pem = aead_open(wrapping_key(master_key), nonce, sealed, _aad(key_id, origin))
    if pem is None:
        raise SigningKeyUnwrapError(
            f"signing key {key_id[:16]}… does not open under this master key"
        )
    if _key_id_of(pem) != key_id:
        raise SigningKeyUnwrapError(f"signing key {key_id[:16]}… holds a different key")
    return pem


def _key_id_of(pem: bytes) -> str:
    # SigningKey loads from a file; a private directory keeps the key unreadable to others.
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "key.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        try:
            return SigningKey.load(path).key_id
        except ValueError:
            return ""
