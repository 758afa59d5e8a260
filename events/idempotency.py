"""Idempotency keys, recorded in the same transaction as the write they guard.

A request that carries an ``Idempotency-Key`` (``api/idempotency/``) opens a ``Claim`` around
its handler. The first append the handler makes while the claim is open also inserts the
claim's row into ``idempotency_keys``: the caller, the key, the digest of the request and a
token naming this one request, inside the append's own transaction. So the row exists exactly
when the write does: a crash before COMMIT leaves neither, one after leaves both, and a second
request with the same key, in this process or another, cannot append again (the primary key
refuses its row, and with it its whole append).

The first answer is stored later, in the row, once the handler has built it (``answers``):
it is not known when the events commit. Rows are not ledger rows: they expire, and are deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from events.db import Cursor

AfterAppend = Callable[[Cursor, list[int]], None]  # as events.store names it

TABLE = "idempotency_keys"


def table_statements(dialect: str) -> list[str]:
    blob = "BLOB" if dialect == "sqlite" else "bytea"
    big = "INTEGER" if dialect == "sqlite" else "bigint"
    return [
        # caller and key: the key is the caller's own (each caller has their own namespace).
        # created, expires: Unix seconds. position: the log position of the first event the
        # guarded write appended. status and answer: the first answer, once stored.
        f"CREATE TABLE IF NOT EXISTS {TABLE} (caller TEXT NOT NULL, key TEXT NOT NULL, "
        f"digest {blob} NOT NULL, token TEXT NOT NULL, created {big} NOT NULL, "
        f"expires {big} NOT NULL, position {big} NOT NULL, status INTEGER, answer {blob}, "
        "PRIMARY KEY (caller, key))",
        f"CREATE INDEX IF NOT EXISTS {TABLE}_expires ON {TABLE} (expires)",
    ]


@dataclass
class Claim:
    """One keyed request's hold on its key, from its first append on."""

    key: str
    digest: bytes
    token: str  # this request's own: tells its row from another request's with the same key
    created: int
    expires: int
    caller: str | None = None  # known once the request is authenticated; until then, no claim
    claimed: bool = False  # an append carrying the row committed


_claim: ContextVar[Claim | None] = ContextVar("idempotency_claim", default=None)


@contextmanager
def claiming(claim: Claim) -> Iterator[Claim]:
    """Appends made inside (by this request) carry ``claim``'s row with the first of them."""
    token = _claim.set(claim)
    try:
        yield claim
    finally:
        _claim.reset(token)


def current() -> Claim | None:
    return _claim.get()


def with_claim(inner: AfterAppend | None) -> tuple[AfterAppend | None, Claim | None]:
    """``inner``, followed by the open claim's row if this append is the claim's first (and
    the claim it carries, to be marked ``claimed`` once the append has committed)."""
    claim = _claim.get()
    if claim is None or claim.claimed or claim.caller is None:
        return inner, None
    caller: str = claim.caller

    def after_append(cursor: Cursor, appended: list[int]) -> None:
        if inner is not None:
            inner(cursor, appended)
        if not appended:
            return
        # An expired row with the same key is free to be taken again; no other row is.
        cursor.execute(
            f"DELETE FROM {TABLE} WHERE caller = ? AND key = ? AND expires <= ?",
            (caller, claim.key, claim.created),
        )
        cursor.execute(
            f"INSERT INTO {TABLE} (caller, key, digest, token, created, expires, position) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (caller, claim.key, claim.digest, claim.token, claim.created, claim.expires,
             appended[0]),
        )  # fmt: skip

    return after_append, claim


def kept(cursor: Cursor, claim: Claim) -> bool:
    """Whether the claim's own row (its token) is in the store: the append that carried it
    committed, whatever the answer to its COMMIT said. For resolving an append whose outcome
    is unknown (the connection dropped during COMMIT) by looking for what it wrote."""
    if claim.caller is None:
        return False
    cursor.execute(
        f"SELECT token FROM {TABLE} WHERE caller = ? AND key = ?", (claim.caller, claim.key)
    )
    row = cursor.fetchone()
    return row is not None and row[0] == claim.token
