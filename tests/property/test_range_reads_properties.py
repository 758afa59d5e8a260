"""The store check's SQLite read gives, window by window, exactly the rows of the plain JOIN.

``verify.ranges._sqlite_rows`` joins each leaf to the event at rowid ``position + offset`` and
looks up by key whatever that misses; ``_joined_rows`` is the JOIN on the key that the spec
describes. Here events are stored in commit order, shuffled, with gaps, missing, duplicated in
another stream, or naming another position, and both must answer alike.
"""

from __future__ import annotations

import sqlite3
from contextlib import suppress

from hypothesis import given, settings
from hypothesis import strategies as st

from verify import ranges
from verify.ranges import _joined_rows, _sqlite_rows
from verify.store import RawStore

SCHEMA = (
    "CREATE TABLE stored_events (originator_id TEXT, originator_version INTEGER, topic TEXT, "
    "state BLOB, position INTEGER NOT NULL, PRIMARY KEY (originator_id, originator_version))",
    "CREATE TABLE ledger_leaves (position INTEGER PRIMARY KEY, stream TEXT NOT NULL, "
    "version INTEGER NOT NULL, leaf BLOB NOT NULL)",
)


@st.composite
def stores(draw: st.DrawFn) -> tuple[RawStore, int]:
    size = draw(st.integers(0, 40))
    streams = [f"{i:032x}" for i in range(draw(st.integers(1, 5)))]
    versions: dict[str, int] = {}
    leaves, events = [], []
    for position in range(size):
        stream = draw(st.sampled_from(streams))
        versions[stream] = versions.get(stream, 0) + 1
        leaves.append((position, stream, versions[stream], bytes([position])))
        fate = draw(st.sampled_from(["stored"] * 6 + ["missing", "moved", "renamed"]))
        if fate == "missing":
            continue
        event_position = position + draw(st.integers(1, 3)) if fate == "moved" else position
        event_stream = f"{99:032x}" if fate == "renamed" else stream
        events.append((event_stream, versions[stream], "t", b"s%d" % position, event_position))
    # commit order, then a few events moved elsewhere in the table, and some rowids skipped
    for _ in range(draw(st.integers(0, 3))):
        if len(events) > 1:
            i, j = draw(st.integers(0, len(events) - 1)), draw(st.integers(0, len(events) - 1))
            events.insert(j, events.pop(i))
    connection = sqlite3.connect(":memory:", isolation_level=None)
    for statement in SCHEMA:
        connection.execute(statement)
    connection.executemany("INSERT INTO ledger_leaves VALUES (?, ?, ?, ?)", leaves)
    rowid = draw(st.integers(1, 5))
    for event in events:
        with suppress(sqlite3.IntegrityError):  # a renamed event colliding with another's key
            connection.execute("INSERT INTO stored_events (rowid, originator_id, "
                               "originator_version, topic, state, position) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (rowid, *event))  # fmt: skip
        rowid += draw(st.sampled_from([1] * 8 + [2, 7]))
    return RawStore(connection, "sqlite", ":memory:"), size


@settings(max_examples=300, deadline=None)
@given(stores(), st.sampled_from([1, 3, 4, 16, 64]), st.sampled_from([0, 1, 64]))
def test_every_window_reads_the_rows_of_the_join(
    store_and_size: tuple, window: int, max_keyed: int
) -> None:
    store, size = store_and_size
    kept, ranges.MAX_KEYED = ranges.MAX_KEYED, max_keyed  # when to give the window to the JOIN
    try:
        for a in range(0, size + window, window):
            assert _sqlite_rows(store, a, a + window) == _joined_rows(store, a, a + window)
    finally:
        ranges.MAX_KEYED = kept
