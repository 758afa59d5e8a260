"""eventsourcing's SQLite application recorder, with the ledger's leaves in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder

from events.db import Database
from events.guards import install_guards
from events.schema import create_tables
from events.store import AfterAppend, append_leaves


def _hex(originator_id: Any) -> str:
    # eventsourcing keeps SQLite originator ids as 32 hex digits; leaves use the same form.
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def create_table(self) -> None:
        super().create_table()
        db = Database(self.datastore)
        with db.write() as c:
            create_tables(c, "sqlite")
            install_guards(c, "sqlite", "main")

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        after_append: AfterAppend | None = None,
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        import sqlite3

        db = Database(self.datastore)
        try:
            # BEGIN IMMEDIATE is the writer lock: no other writer can read a stale tip.
            with db.write() as c:
                positions = append_leaves(c, stored_events, _hex)
                ids = []
                for s in stored_events:
                    c.execute(
                        self.insert_events_statement,
                        (_hex(s.originator_id), s.originator_version, s.topic, s.state),
                    )
                    ids.append(c.lastrowid)
                if after_append is not None:
                    after_append(c, positions)
        except sqlite3.IntegrityError as e:
            raise IntegrityError(e) from e
        return ids
