"""Per-subject data keys, wrapped by the practice master key, and AES-GCM sealing (§4.3).

A subject's payloads can be made unreadable for good by destroying its one wrapped data key
(crypto-shredding) while every hash over them stays as it was.
"""

from __future__ import annotations

import os
import threading

from events.db import Database
from events.keys import KEY_SIZE, KeyError_, aead_open, aead_seal, unwrap_key, wrap_key
from verify.canonical import decode, pack_ordered
from verify.hashing import commitment

NONCE_SIZE = 12
SALT_SIZE = 32


class DataKeyDestroyed(LookupError):
    """The subject's data key was destroyed (disposal): its payloads cannot be opened."""


class SealError(ValueError):
    """A sealed payload did not open, or opened to something its header does not commit to."""


def aad(stream: str, version: int) -> bytes:
    return pack_ordered({"stream": stream, "version": version})  # canonical key order


class DataKeys:
    """Find or create each subject's data key; keys are cached unwrapped in memory only."""

    def __init__(self, db: Database, master_key: bytes) -> None:
        self._db = db
        self._master_key = master_key
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, subject: str) -> bytes:
        """The existing key; DataKeyDestroyed when it is gone (never silently re-created)."""
        key = self._cache.get(subject)
        if key is None:
            key = self._load(subject)
            if key is None:
                raise DataKeyDestroyed(f"no data key for {subject}")
        return key

    def get_or_create(self, subject: str) -> bytes:
        key = self._cache.get(subject)
        if key is not None:
            return key
        with self._lock:
            key = self._load(subject)
            if key is None:
                wrapped = wrap_key(self._master_key, os.urandom(KEY_SIZE))
                with self._db.write(lock=False) as c:
                    c.execute(
                        "INSERT INTO ledger_data_keys (subject, wrapped) VALUES (?, ?) "
                        "ON CONFLICT (subject) DO NOTHING",
                        (subject, wrapped),
                    )
                key = self._load(subject)
                assert key is not None
            return key

    def forget(self, subject: str) -> None:
        self._cache.pop(subject, None)

    def _load(self, subject: str) -> bytes | None:
        with self._db.read() as c:
            c.execute("SELECT wrapped FROM ledger_data_keys WHERE subject = ?", (subject,))
            row = c.fetchone()
        if row is None:
            return None
        try:
            key = unwrap_key(self._master_key, bytes(row[0]))
        except KeyError_:
            raise SealError(
                f"data key of {subject} does not unwrap under this master key"
            ) from None
        self._cache[subject] = key
        return key


def seal(data_key: bytes, stream: str, version: int, payload: bytes) -> tuple[bytes, bytes]:
    """Return (commitment, sealed bytes) for canonical payload bytes."""
    fresh = os.urandom(SALT_SIZE + NONCE_SIZE)
    salt, nonce = fresh[:SALT_SIZE], fresh[SALT_SIZE:]
    plaintext = pack_ordered({"salt": salt, "payload": payload})  # canonical key order
    sealed = nonce + aead_seal(data_key, nonce, plaintext, aad(stream, version))
    return commitment(salt, payload), sealed


def unseal(data_key: bytes, stream: str, version: int, sealed: bytes) -> tuple[bytes, bytes]:
    """Return (salt, payload bytes); SealError if the ciphertext or its binding was altered."""
    plaintext = aead_open(data_key, sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad(stream, version))
    if plaintext is None:
        raise SealError(f"sealed payload of {stream} v{version} does not open")
    opened = decode(plaintext)
    return opened["salt"], opened["payload"]
