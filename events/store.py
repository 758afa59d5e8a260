"""Append events and their leaves in one transaction under the writer lock (§5).

Called by both recorders with the lock already held: the next position is one past the last
leaf, and each subject's previous leaf comes from ``ledger_links``. Leaves are inserted before
the events, so the trigger that refuses an event without its leaf can see them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from events.db import Cursor
from events.encoding import LedgerStoredEvent
from verify.records import Link, leaf_bytes

# Work that must commit or fail together with the events (e.g. a key statement), given
# the cursor and the positions the events received.
AfterAppend = Callable[[Cursor, list[int]], None]


class NotALedgerEvent(TypeError):
    """A stored event that did not come through the ledger's mapper."""


def append_leaves(
    cursor: Cursor, events: Sequence[Any], stream_column: Callable[[Any], Any]
) -> list[int]:
    """Insert the leaves and links of ``events``; return their positions."""
    for event in events:
        if not isinstance(event, LedgerStoredEvent) or len(event.digest) != 32:
            raise NotALedgerEvent("only events encoded by LedgerMapper can be appended")
    cursor.execute("SELECT MAX(position) FROM ledger_leaves")
    row = cursor.fetchone()
    position = 0 if row is None or row[0] is None else row[0] + 1
    heads = _heads(cursor, {s for event in events for s in event.subjects})
    leaf_rows, link_rows, positions = [], [], []
    for event in events:
        links: list[Link] = []
        for subject in event.subjects:
            seq, prev = heads.get(subject, (0, None))
            links.append((subject, seq + 1, prev))
            heads[subject] = (seq + 1, position)
            link_rows.append((subject, seq + 1, position))
        leaf_rows.append(
            (
                position,
                stream_column(event.originator_id),
                event.originator_version,
                leaf_bytes(event.digest, links),
            )
        )
        positions.append(position)
        position += 1
    cursor.executemany(
        "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
        leaf_rows,
    )
    if link_rows:
        cursor.executemany(
            "INSERT INTO ledger_links (subject, seq, position) VALUES (?, ?, ?)", link_rows
        )
    return positions


def _heads(cursor: Cursor, subjects: set[str]) -> dict[str, tuple[int, int]]:
    heads = {}
    for subject in subjects:
        cursor.execute(
            "SELECT seq, position FROM ledger_links WHERE subject = ? ORDER BY seq DESC LIMIT 1",
            (subject,),
        )
        row = cursor.fetchone()
        if row is not None:
            heads[subject] = (row[0], row[1])
    return heads
