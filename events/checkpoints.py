"""Issuing signed checkpoints (§8): every N events, every T seconds, and on demand."""

from __future__ import annotations

import base64
import logging
import time as clock
from collections.abc import Callable
from datetime import UTC, datetime

from events.db import Cursor, Database
from events.keys import SigningKey
from events.log import LogState, leaf_feed, tree_size
from events.tiles import TileMismatch
from verify.canonical import format_timestamp
from verify.checkpoint import (
    SIGNATURE_PREFIX,
    UnverifiedCheckpoint,
    format_body,
    format_note,
    parse_note,
)
from verify.keyhistory import KeyStatement, parse_statement

DEFAULT_EVERY_EVENTS = 1000
DEFAULT_EVERY_SECONDS = 60.0
log = logging.getLogger(__name__)
INSERT_CHECKPOINT = (
    "INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?) ON CONFLICT (size) DO NOTHING"
)


def latest_checkpoint(cursor: Cursor) -> UnverifiedCheckpoint | None:
    cursor.execute("SELECT note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
    row = cursor.fetchone()
    return None if row is None else parse_note(bytes(row[0]))


def checkpoint_at(cursor: Cursor, size: int) -> UnverifiedCheckpoint | None:
    cursor.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))
    row = cursor.fetchone()
    return None if row is None else parse_note(bytes(row[0]))


def current_key_id(cursor: Cursor) -> str:
    return _latest_statement(cursor).key_id


def _latest_statement(cursor: Cursor) -> KeyStatement:
    cursor.execute("SELECT statement FROM ledger_keys ORDER BY seq DESC LIMIT 1")
    row = cursor.fetchone()
    if row is None:
        raise LookupError("the key history is empty: run chartledger init")
    return parse_statement(bytes(row[0]))


def signer_ids(cursor: Cursor) -> list[str]:
    """The key in force, and also the one before it while no checkpoint has been signed since
    the rotation: that first checkpoint carries both signatures, so a witness that trusts only
    the old key still follows the log across the rotation (docs/WITNESS.md §3)."""
    statement = _latest_statement(cursor)
    if statement.previous is None:
        return [statement.key_id]
    cursor.execute("SELECT 1 FROM ledger_checkpoints WHERE size >= ?", (statement.from_size,))
    if cursor.fetchone() is not None:
        return [statement.key_id]
    return [statement.key_id, statement.previous]


class Checkpointer:
    def __init__(
        self,
        db: Database,
        origin: str,
        load_key: Callable[[str], SigningKey],
        every_events: int = DEFAULT_EVERY_EVENTS,
        every_seconds: float = DEFAULT_EVERY_SECONDS,
    ) -> None:
        self._db = db
        self.origin = origin
        self._load_key = load_key
        self.every_events = every_events
        self.every_seconds = every_seconds
        self._state = LogState(leaf_feed(db.datastore))
        self._last_size: int | None = None
        self._last_time = clock.monotonic()
        # Told the size of each checkpoint once it is committed (events/witnessing.py).
        self.on_issued: Callable[[int], None] | None = None

    def issue(self, at: datetime | None = None) -> UnverifiedCheckpoint:
        """Sign the log as it stands now (or return the checkpoint already at this size).

        Under the writer lock, as an append signs: the signer's timer, a production's or a
        backup's checkpoint and ``chartledger checkpoint`` (on PostgreSQL perhaps on several
        hosts) take turns with each other and with appends and key rotations, so the second
        of two finds the first's checkpoint at the size both saw and signs nothing: a
        checkpoint of size N is signed once. The lock is held for the incremental roots and
        one signature: milliseconds."""
        with self._db.write() as c:
            size = tree_size(c)
            existing = checkpoint_at(c, size)
            if existing is None:
                keys = [self._load_key(key_id) for key_id in signer_ids(c)]
                root, heads_root = self._state.roots_at(c, size)
                note = self._sign(keys, size, root, heads_root, at)
                c.execute(INSERT_CHECKPOINT, (size, note))
                existing = parse_note(note)
        self._note_issued(size)
        return existing

    def issue_if_due(self, cursor: Cursor, size: int) -> int | None:
        """Inside an append's transaction, under the writer lock: sign the log at ``size`` in
        that same transaction when a checkpoint is due (so it costs no commit of its own), and
        return the size signed. Call ``committed(size)`` once the transaction has committed,
        or ``rolled_back()`` if it did not: the roots were computed over leaves it held."""
        if not self._due(cursor, size) or not self._still_due(cursor, size):
            return None
        try:
            keys = [self._load_key(key_id) for key_id in signer_ids(cursor)]
        except LookupError as e:
            # A key rotated on another host and not yet copied here (docs/DEPLOYMENT.md §3):
            # the append commits unsigned; the signer, or a host holding the key, signs it.
            log.error("checkpoint at size %d not signed here: %s", size, type(e).__name__)
            return None
        try:
            root, heads_root = self._state.roots_at(cursor, size)
        except TileMismatch as e:
            # Nothing is signed over a tree the stored hashes disagree with; the append itself
            # is sound (its leaves are), so it commits. `chartledger verify` names the tile;
            # an explicit `chartledger checkpoint` refuses with the same message.
            log.error("checkpoint at size %d not signed: %s", size, e)
            return None
        cursor.execute(INSERT_CHECKPOINT, (size, self._sign(keys, size, root, heads_root, None)))
        return size

    def committed(self, size: int) -> None:
        self._note_issued(size)

    def rolled_back(self) -> None:
        self._state.forget()

    def _sign(
        self,
        keys: list[SigningKey],
        size: int,
        root: bytes,
        heads_root: bytes,
        at: datetime | None,
    ) -> bytes:
        """Signed by the key in force (named in the body), then by any others given."""
        key = keys[0]
        moment = format_timestamp(at or datetime.now(UTC))
        body = format_body(self.origin, size, root, heads_root, moment, key.key_id)
        note = format_note(body, self.origin, key.note_key_hash(self.origin), key.sign(body))
        for other in keys[1:]:
            blob = base64.b64encode(other.note_key_hash(self.origin) + other.sign(body)).decode()
            note += f"{SIGNATURE_PREFIX}{self.origin} {blob}\n".encode()
        return note

    def maybe_issue(self, size: int) -> UnverifiedCheckpoint | None:
        """Issue when N events or T seconds have passed since the last checkpoint."""
        if self._last_size is None:
            with self._db.read() as c:
                due = self._due(c, size)
        else:
            due = self._due(None, size)
        return self.issue() if due else None

    def _due(self, cursor: Cursor | None, size: int) -> bool:
        if self._last_size is None:
            assert cursor is not None
            last = latest_checkpoint(cursor)
            self._last_size = last.size if last else 0
        due_by_count = size - self._last_size >= self.every_events
        due_by_time = clock.monotonic() - self._last_time >= self.every_seconds
        return size > self._last_size and (due_by_count or due_by_time)

    def _still_due(self, cursor: Cursor, size: int) -> bool:
        """Due by what this process knows; now asked of the store, under the writer lock: a
        checkpoint signed since by another process (on another host, whose appends sign too)
        counts as this process's last, so the cadence is the practice's, not each process's."""
        last = latest_checkpoint(cursor)
        if last is not None and last.size > (self._last_size or 0):
            self._last_size = last.size
            self._last_time = clock.monotonic()
        return self._due(cursor, size)

    def _note_issued(self, size: int) -> None:
        self._last_size = max(size, self._last_size or 0)
        self._last_time = clock.monotonic()
        if self.on_issued is not None:
            self.on_issued(size)
