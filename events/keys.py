"""Key material: the master key, Ed25519 signing keys, and the primitives that use them.

Only this module and verify/signing.py import cryptography.hazmat. Key files are written with
mode 0600 and never logged.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.private_files import write_private
from verify.canonical import encode
from verify.signing import key_id, note_key_hash

KEY_SIZE = 32
# The first byte of a wrapped data key (LEDGER_FORMAT.md §4.3). Format 1 (RFC 3394 AES Key
# Wrap, 40 bytes) bound the key to nothing: its row could be moved to another owner unnoticed.
WRAP_FORMAT = 2
WRAP_NONCE_SIZE = 12
WRAPPED_SIZE = 1 + WRAP_NONCE_SIZE + KEY_SIZE + 16
WRAP_PURPOSE = "chartledger data key"


class KeyError_(ValueError):
    """Key material is missing, malformed, or does not fit."""


def write_secret(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never world-readable, even briefly)."""
    write_private(path, data, exclusive=True)


def new_master_key() -> bytes:
    return os.urandom(KEY_SIZE)


def read_master_key(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) != KEY_SIZE:
        raise KeyError_(f"master key file {path} is {len(data)} bytes, want {KEY_SIZE}")
    return data


def wrap_aad(name: str, subject: str) -> bytes:
    """What a wrapped data key is bound to: its name and the owner its row names."""
    return encode({"purpose": WRAP_PURPOSE, "name": name, "subject": subject})


def wrap_key(master_key: bytes, data_key: bytes, *, name: str, subject: str) -> bytes:
    """``0x02 || nonce || AES-256-GCM(master key, nonce, data key, aad(name, subject))``: the
    row cannot be renamed, moved to another owner or have a bit changed and still unwrap."""
    nonce = os.urandom(WRAP_NONCE_SIZE)
    sealed = AESGCM(master_key).encrypt(nonce, data_key, wrap_aad(name, subject))
    return bytes([WRAP_FORMAT]) + nonce + sealed


def unwrap_key(master_key: bytes, wrapped: bytes, *, name: str, subject: str) -> bytes:
    """The data key; KeyError_ unless ``wrapped`` is a format-2 key bound to this name and
    subject under this master key."""
    if len(wrapped) != WRAPPED_SIZE or wrapped[0] != WRAP_FORMAT:
        raise KeyError_(
            f"a data key is {len(wrapped)} bytes of format {wrapped[:1].hex() or 'none'}, "
            f"want {WRAPPED_SIZE} bytes of format {WRAP_FORMAT:02x}"
        )
    nonce, sealed = wrapped[1 : 1 + WRAP_NONCE_SIZE], wrapped[1 + WRAP_NONCE_SIZE :]
    try:
        return AESGCM(master_key).decrypt(nonce, sealed, wrap_aad(name, subject))
    except InvalidTag:
        raise KeyError_(
            "a data key does not unwrap under this master key for its name and subject"
        ) from None


@lru_cache(maxsize=4096)
def _aead(key: bytes) -> AESGCM:
    # Building the AES key schedule costs as much as sealing a small payload; reuse it.
    return AESGCM(key)


def aead_seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return _aead(key).encrypt(nonce, plaintext, aad)


def aead_open(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes | None:
    """The plaintext, or None when the ciphertext, nonce or aad were altered."""
    try:
        return _aead(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag:
        return None


class SigningKey:
    """An Ed25519 key that signs checkpoints and key statements for one origin."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(self.public_key)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load(cls, path: Path) -> SigningKey:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyError_(f"{path} is not an Ed25519 private key")
        return cls(key)

    def save(self, path: Path) -> None:
        write_secret(
            path,
            self._private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def note_key_hash(self, origin: str) -> bytes:
        return note_key_hash(origin, self.public_key)
