"""The key as the header carries it, and the digest that tells one request from another.

No I/O here: both are pure functions of the request's bytes (property-tested in
tests/property/test_idempotency_properties.py).
"""

from __future__ import annotations

import hashlib
import struct

MAX_KEY_LENGTH = 255
# RFC 8941 §3.3.3: an sf-string holds printable ASCII; only '"' and '\' are escaped.
_PRINTABLE = range(0x20, 0x7F)
# The bare form, accepted too: visible ASCII but the characters that would make it ambiguous
# as a structured field (quotes, escapes, list and parameter separators).
_BARE = frozenset(chr(c) for c in range(0x21, 0x7F)) - set('"\\,;')


class InvalidKey(ValueError):
    """The Idempotency-Key header is not one key this server accepts; says why, not the key."""


def parse_key(values: list[bytes]) -> str:
    """The key in the request's ``Idempotency-Key`` header ``values`` (one field, one key).

    The draft's form is an sf-string, ``"8e03978e-40d5-43e8-bc93-6894a57f9324"``; a bare
    value of visible ASCII (``8e03978e-40d5-...``) is accepted as the same key. 1 to 255
    characters once unescaped."""
    if len(values) != 1:
        raise InvalidKey("send one Idempotency-Key header, not several")
    try:
        field = values[0].decode("ascii").strip(" \t")
    except UnicodeDecodeError:
        raise InvalidKey("the Idempotency-Key must be ASCII") from None
    key = _sf_string(field) if field.startswith('"') else _bare(field)
    if not key:
        raise InvalidKey("the Idempotency-Key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"the Idempotency-Key is longer than {MAX_KEY_LENGTH} characters")
    return key


def _sf_string(field: str) -> str:
    """RFC 8941 §4.2.5 (Parsing a String), the whole field being the one string."""
    out: list[str] = []
    i = 1
    while i < len(field):
        c = field[i]
        if c == "\\":
            if i + 1 >= len(field) or field[i + 1] not in '"\\':
                raise InvalidKey('the Idempotency-Key escapes only " and \\')
            out.append(field[i + 1])
            i += 2
        elif c == '"':
            if i + 1 != len(field):
                raise InvalidKey("the Idempotency-Key has something after its closing quote")
            return "".join(out)
        elif ord(c) not in _PRINTABLE:
            raise InvalidKey("the Idempotency-Key holds a character a string may not")
        else:
            out.append(c)
            i += 1
    raise InvalidKey("the Idempotency-Key has no closing quote")


def _bare(field: str) -> str:
    if any(c not in _BARE for c in field):
        raise InvalidKey("the Idempotency-Key is neither a quoted string nor bare visible ASCII")
    return field


def serialize_key(key: str) -> str:
    """The header value for ``key``: an sf-string (RFC 8941 §4.1.6), as clients send it."""
    if not key or len(key) > MAX_KEY_LENGTH or any(ord(c) not in _PRINTABLE for c in key):
        raise InvalidKey("an Idempotency-Key is 1 to 255 printable ASCII characters")
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def request_digest(method: str, path: str, query: bytes, body: bytes) -> bytes:
    """SHA-256 over the method, path, query string and body, each prefixed by its length, so
    no two different requests share their bytes (and, but for a SHA-256 collision, a digest)."""
    h = hashlib.sha256(b"chartledger idempotency request\x00")
    for part in (method.encode("ascii"), path.encode("utf-8"), query, body):
        h.update(struct.pack(">Q", len(part)))
        h.update(part)
    return h.digest()
