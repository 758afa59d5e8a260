"""The signing key history (docs/LEDGER_FORMAT.md §9): each key signed by its predecessor."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from verify.canonical import decode, encode, parse_timestamp
from verify.errors import ChainBroken, MalformedInput, UnknownKey
from verify.signing import key_id, verify_signature

__all__ = ["KeyStatement", "key_for_size", "statement_bytes", "verify_key_history"]

STATEMENT_KEYS = (
    "seq", "time", "format", "key_id", "origin", "previous", "from_size", "public_key",
)  # fmt: skip


class KeyStatement(NamedTuple):
    seq: int
    key_id: str
    public_key: bytes
    previous: str | None
    from_size: int
    time: str
    origin: str


def statement_bytes(statement: KeyStatement) -> bytes:
    return encode(
        {
            "seq": statement.seq,
            "time": statement.time,
            "format": 1,
            "key_id": statement.key_id,
            "origin": statement.origin,
            "previous": statement.previous,
            "from_size": statement.from_size,
            "public_key": statement.public_key,
        }
    )


def parse_statement(data: bytes) -> KeyStatement:
    s = decode(data)
    if type(s) is not dict or tuple(s) != STATEMENT_KEYS or type(s["format"]) is not int:
        raise MalformedInput("key statement does not have the keys of format 1")
    if s["format"] != 1:
        raise MalformedInput("key statement does not have the keys of format 1")
    if type(s["origin"]) is not str:
        raise MalformedInput("key statement origin must be text")
    if type(s["public_key"]) is not bytes or len(s["public_key"]) != 32:
        raise MalformedInput("key statement public_key must be 32 bytes")
    for name in ("seq", "from_size"):
        if type(s[name]) is not int or s[name] < 0:
            raise MalformedInput(f"key statement {name} must be a non-negative integer")
    parse_timestamp(s["time"])
    return KeyStatement(
        seq=s["seq"],
        key_id=s["key_id"],
        public_key=s["public_key"],
        previous=s["previous"],
        from_size=s["from_size"],
        time=s["time"],
        origin=s["origin"],
    )


def verify_key_history(
    rows: Iterable[tuple[int, bytes, bytes, bytes | None]], trusted_key: str | None = None
) -> list[KeyStatement]:
    """Check (seq, statement, signature_self, signature_prev) rows; return the statements."""
    history: list[KeyStatement] = []
    for seq, data, signature_self, signature_prev in rows:
        what = f"key statement {seq}"
        statement = parse_statement(bytes(data))
        if statement.seq != seq or seq != len(history):
            raise ChainBroken(f"{what}: has seq {statement.seq}, expected {len(history)}")
        if statement.key_id != key_id(statement.public_key):
            raise MalformedInput(f"{what}: key_id does not match its public key")
        verify_signature(statement.public_key, bytes(signature_self), bytes(data), what)
        if seq == 0:
            if statement.previous is not None or statement.from_size != 0:
                raise ChainBroken(f"{what}: the first key must have no previous and from_size 0")
            if trusted_key is not None and statement.key_id != trusted_key:
                raise UnknownKey(
                    f"{what}: first key is {statement.key_id[:16]}…, "
                    f"trusted key is {trusted_key[:16]}…"
                )
        else:
            before = history[-1]
            if statement.previous != before.key_id:
                raise ChainBroken(
                    f"{what}: previous is {str(statement.previous)[:16]}…, "
                    f"expected {before.key_id[:16]}…"
                )
            if statement.from_size <= before.from_size:
                raise ChainBroken(f"{what}: from_size {statement.from_size} does not increase")
            if statement.origin != before.origin:
                raise ChainBroken(f"{what}: origin changed from {before.origin!r}")
            if signature_prev is None:
                raise ChainBroken(f"{what}: not signed by the previous key")
            verify_signature(before.public_key, bytes(signature_prev), bytes(data), what)
        history.append(statement)
    if not history:
        raise ChainBroken("the key history is empty")
    return history


def key_for_size(history: list[KeyStatement], size: int) -> KeyStatement:
    """The key in force for a checkpoint of ``size``: greatest from_size <= size."""
    current = history[0]
    for statement in history:
        if statement.from_size <= size:
            current = statement
    return current
