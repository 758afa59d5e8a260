"""The hashes of docs/LEDGER_FORMAT.md §4: event digest, commitment, sealed-payload hash."""

from __future__ import annotations

import hashlib

__all__ = ["commitment", "event_digest", "sha256", "short"]


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def event_digest(header_bytes: bytes) -> bytes:
    """H(header bytes): what a leaf commits to (§4.1)."""
    return hashlib.sha256(header_bytes).digest()


def commitment(salt: bytes, payload_bytes: bytes) -> bytes:
    """H(salt || payload bytes) (§4.2): binds the payload without revealing it."""
    return hashlib.sha256(salt + payload_bytes).digest()


def short(value: bytes | None) -> str:
    """The first 8 hex digits, for messages that name two hashes."""
    return "none" if value is None else value.hex()[:8] + "…"
