"""Signing-key rotation (§9): a ledger event, and a key statement signed by the old key,
committed in the same transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event

from events.db import Cursor
from events.keys import SigningKey
from events.ledger import Ledger
from verify.canonical import format_timestamp
from verify.keyhistory import KeyStatement, parse_statement, statement_bytes


class KeyHistory(Aggregate):
    """The practice's signing keys, as seen by the log."""

    @staticmethod
    def create_id(origin: str, first_key_id: str = "") -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, origin + "/keys")

    @event("Started")
    def __init__(self, origin: str, first_key_id: str) -> None:
        self.origin = origin
        self.key_ids = [first_key_id]

    @event("Rotated")
    def rotated(self, key_id: str, public_key: bytes, previous: str) -> None:
        self.key_ids.append(key_id)


def rotate_signing_key(ledger: Ledger) -> KeyStatement:
    """Generate a new key, record its rotation, and return the new key statement."""
    history = ledger.key_history()
    current = history[-1]
    old_key = ledger.signing_key(current.key_id)
    new_key = SigningKey.generate()
    # Saved before the event commits, so a crash can never leave a statement without its key.
    new_key.save(ledger.config.signing_key_path(new_key.key_id))
    stream = KeyHistory.create_id(ledger.origin)
    try:
        keys = ledger.repository.get(stream)
    except AggregateNotFoundError:
        keys = KeyHistory(origin=ledger.origin, first_key_id=current.key_id)
    keys.rotated(key_id=new_key.key_id, public_key=new_key.public_key, previous=old_key.key_id)
    made: list[KeyStatement] = []

    def record_statement(cursor: Cursor, positions: list[int]) -> None:
        cursor.execute("SELECT statement FROM ledger_keys ORDER BY seq DESC LIMIT 1")
        row = cursor.fetchone()
        assert row is not None
        latest = parse_statement(bytes(row[0]))
        if latest.key_id != old_key.key_id:
            raise RuntimeError("the signing key was rotated concurrently; try again")
        statement = KeyStatement(
            seq=latest.seq + 1,
            key_id=new_key.key_id,
            public_key=new_key.public_key,
            previous=latest.key_id,
            from_size=positions[-1] + 1,
            time=format_timestamp(datetime.now(UTC)),
            origin=ledger.origin,
        )
        data = statement_bytes(statement)
        cursor.execute(
            "INSERT INTO ledger_keys (seq, statement, signature_self, signature_prev) "
            "VALUES (?, ?, ?, ?)",
            (statement.seq, data, new_key.sign(data), old_key.sign(data)),
        )
        made.append(statement)

    ledger.save(keys, after_append=record_statement)
    return made[0]
