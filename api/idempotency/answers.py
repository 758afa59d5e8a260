"""The rows of ``idempotency_keys`` as the API reads and completes them.

A row is written with its write (``events/idempotency.py``); here it is found, given its first
answer, given up (an answer that is not the request's final outcome), and swept once expired.
The answer is sealed (AES-GCM, a key derived from the practice's master key, the caller and key
as associated data): a lab's answer is PHI, and the table is not the ledger's sealed payloads.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass

import msgpack

from events.db import Database
from events.idempotency import TABLE, Claim
from events.keys import aead_open, aead_seal

NONCE = 12
SWEEP_EVERY = 300.0  # seconds between one process's sweeps of expired rows


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Row:
    digest: bytes
    token: str
    created: int
    position: int
    answer: Answer | None


class Answers:
    def __init__(self, db: Database, master_key: bytes) -> None:
        self.db = db
        label = b"chartledger idempotency answers"
        self._key = hmac.new(master_key, label, hashlib.sha256).digest()
        self._swept = 0.0
        self._sweeping = threading.Lock()

    def find(self, caller: str, key: str, now: int) -> Row | None:
        """The caller's unexpired row for ``key``, if any."""
        rows = self.db.query(
            f"SELECT digest, token, created, position, status, answer FROM {TABLE} "
            "WHERE caller = ? AND key = ? AND expires > ?",
            (caller, key, now),
        )
        if not rows:
            return None
        digest, token, created, position, status, sealed = rows[0]
        answer = None
        if status is not None and sealed is not None:
            answer = self._open(caller, key, bytes(sealed))
        return Row(bytes(digest), token, int(created), int(position), answer)

    def record(self, claim: Claim, answer: Answer) -> None:
        """Store ``answer`` as the first answer to the claim's request (its row, by its token)."""
        assert claim.caller is not None
        sealed = self._seal(claim.caller, claim.key, answer)
        with self.db.write(lock=False) as c:
            c.execute(
                f"UPDATE {TABLE} SET status = ?, answer = ? "
                "WHERE caller = ? AND key = ? AND token = ?",
                (answer.status, sealed, claim.caller, claim.key, claim.token),
            )
        self.sweep_if_due()

    def give_up(self, claim: Claim) -> None:
        """Free the key again: the request's answer was a refusal, which a retry may turn."""
        with self.db.write(lock=False) as c:
            c.execute(
                f"DELETE FROM {TABLE} WHERE caller = ? AND key = ? AND token = ?",
                (claim.caller, claim.key, claim.token),
            )

    def sweep_if_due(self) -> None:
        """Delete expired rows, at most once every SWEEP_EVERY seconds in this process."""
        now = time.monotonic()
        if now - self._swept < SWEEP_EVERY or not self._sweeping.acquire(blocking=False):
            return
        try:
            self._swept = now
            with self.db.write(lock=False) as c:
                c.execute(f"DELETE FROM {TABLE} WHERE expires <= ?", (int(time.time()),))
        finally:
            self._sweeping.release()

    def _seal(self, caller: str, key: str, answer: Answer) -> bytes:
        plain = msgpack.packb([answer.status, answer.headers, answer.body], use_bin_type=True)
        nonce = os.urandom(NONCE)
        return nonce + aead_seal(self._key, nonce, plain, _aad(caller, key))

    def _open(self, caller: str, key: str, sealed: bytes) -> Answer | None:
        plain = aead_open(self._key, sealed[:NONCE], sealed[NONCE:], _aad(caller, key))
        if plain is None:  # altered in the database: no answer to replay
            return None
        status, headers, body = msgpack.unpackb(plain, raw=False)
        return Answer(int(status), [(str(k), str(v)) for k, v in headers], bytes(body))


def _aad(caller: str, key: str) -> bytes:
    return caller.encode() + b"\x00" + key.encode()
