"""Follow the log in position order and keep read models up to date, exactly once.

Each projection's rows and its position (the next log position it has not applied) are written
in one transaction, and the position moves only from the value this runner read: two runners
racing on one store cannot both apply a batch. Views are disposable: ``rebuild`` drops a view's
tables and replays it from position 0, and must come out identical to the live one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

from events.background import Heartbeat, keep_running
from events.collector import heap_frozen
from events.db import Cursor, Database, Dialect, Statement
from events.encoding import CanonicalTranscoder, LedgerMapper, read_record
from events.ledger import Ledger
from events.sealing import DataKeyDestroyed, DataKeys
from verify.records import Header

BATCH = 2_000
PRELOAD_AFTER = 20_000  # events behind: a long pass (every data key in one query, heap frozen)
PENDING_SCAN = 500  # pending events a reader looks through before it simply catches up
Progress = Callable[[int, int], None]  # (applied up to position, log size)


class Entry(NamedTuple):  # a tuple: one is made for every event replayed
    """One event as projections see it: its log position, its header, and its content.

    ``event`` is None when the payload was disposed of (its data key destroyed): the header,
    and so the audit trail, outlives the content. It is also None for an event that no view
    of the reader needs (see ``Projection.modules``): such an event is not opened at all.
    """

    position: int
    header: Header
    event: Any | None


class Projection:
    """A read model: its tables, and how a batch of entries changes them."""

    name: str = ""
    tables: tuple[str, ...] = ()
    # The modules whose events can change the view (a topic's part before ":"), or None for
    # every event. Lets a reader skip catching up when only other events are pending.
    modules: frozenset[str] | None = None

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        raise NotImplementedError

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        raise NotImplementedError

    def prepare(self, db: Database, entries: Sequence[Entry], since: int) -> Any:
        """What ``write`` needs to apply ``entries`` (which start at the view's position
        ``since``), worked out before the write transaction begins, so that the store's writer
        is held for writing only. By default nothing is: ``write`` applies the entries."""
        return entries

    def write(self, cursor: Cursor, prepared: Any) -> None:
        """Write what ``prepare`` gave, in the transaction that moves the view's position."""
        self.apply(cursor, prepared)

    def forget(self) -> None:
        """A prepared batch was not written: drop anything kept from earlier batches."""

    def drop(self, cursor: Cursor) -> None:
        for table in reversed(self.tables):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")


class PositionMoved(RuntimeError):
    """Another runner applied this batch first; this one's transaction was rolled back."""


POSITIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS projection_positions "
    "(name TEXT PRIMARY KEY, position {big} NOT NULL)"
)


class Runner:
    """Keeps ``projections`` caught up with ``ledger``'s log."""

    def __init__(self, ledger: Ledger, projections: Iterable[Projection]) -> None:
        self.ledger = ledger
        self.db: Database = ledger.db
        self.projections = {p.name: p for p in projections}
        self._applying = threading.Lock()
        # The modules whose events some view here reads (None: every event is read).
        wanted = [p.modules for p in self.projections.values()]
        self.modules = None if None in wanted else frozenset().union(*wanted)
        # By view: positions [lo, hi) of the log known to hold no event the view reads, so a
        # reader looks only past them (see catch_up_for). The log never changes, so what was
        # found stays true; threads may race to replace it, each with something it found.
        self._unread: dict[str, tuple[int, int]] = {}
        with self.db.setting_up(), self.db.write(lock=False) as c:
            big = "INTEGER" if self.db.dialect == "sqlite" else "bigint"
            c.execute(POSITIONS_DDL.format(big=big))
            for projection in self.projections.values():
                projection.create(c, self.db.dialect)
                c.execute(
                    "INSERT INTO projection_positions (name, position) VALUES (?, 0) "
                    "ON CONFLICT (name) DO NOTHING",
                    (projection.name,),
                )

    def positions(self) -> dict[str, int]:
        rows = self.db.query("SELECT name, position FROM projection_positions")
        return {name: pos for name, pos in rows if name in self.projections}

    def applied(self) -> tuple[int, int]:
        """(the log's size, the lowest position of the views): one statement, no lock, no
        decoding (every request asks before it reads a view)."""
        rows = self.db.query(
            "SELECT t.top, p.name, p.position FROM (SELECT MAX(position) AS top "
            "FROM ledger_leaves) t LEFT JOIN projection_positions p ON 1 = 1"
        )
        top = rows[0][0]
        size = 0 if top is None else top + 1
        lowest = min((pos for _, name, pos in rows if name in self.projections), default=size)
        return size, lowest

    def catch_up_to(self, target: int | None = None) -> None:
        """Make every view apply the log at least up to ``target`` (by default the log's size
        now, so a reader sees every write committed before it asked); cheap when they have."""
        size, lowest = self.applied()
        target = size if target is None else target
        if lowest < target:
            self.catch_up(until=target)

    def catch_up_for(self, name: str, target: int | None = None) -> None:
        """As ``catch_up_to``, for the one view a reader needs: nothing to do when every event
        it has not applied comes from a module it ignores (a chart read need not wait for the
        audit view to take in the reads recorded before it).

        One statement, no lock, no decoding (``_pending``), and a catch-up only if it finds
        an event the view reads still to apply.
        """
        unread = self._unread.get(name, (0, 0))
        self._settle(name, unread, self.db.query(*self._pending(name, target, unread))[0])

    def read_for(self, name: str, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (a read of view ``name``) once the view holds every event it
        reads that was committed before the call, as ``catch_up_for`` then ``query`` would
        give them. The check and the read go to the store together, in one round trip; only
        when the view was behind does it catch up and read again."""
        unread = self._unread.get(name, (0, 0))
        checked, rows = self.db.queries([self._pending(name, None, unread), (sql, params)])
        if self._settle(name, unread, checked[0]):
            return self.db.query(sql, params)
        return rows

    def _pending(self, name: str, target: int | None, unread: tuple[int, int]) -> Statement:
        """The check behind ``catch_up_for``: the target (the log's size, unless given), the
        view's position and, when at most ``PENDING_SCAN`` events lie between, whether one of
        them comes from a module the view reads. It looks only past ``unread`` (what earlier
        checks found to hold none), so under steady load each looks at the few events
        appended since the last, not at everything the views have still to apply."""
        modules = self.projections[name].modules
        concerning = " OR ".join("e.topic LIKE ?" for _ in modules or ()) or "1 = 1"
        lo, hi = unread
        return (
            "SELECT t.target, p.position, CASE WHEN p.position >= t.target THEN FALSE "
            "WHEN t.target - p.position > ? THEN TRUE "
            "ELSE EXISTS (SELECT 1 FROM ledger_leaves l JOIN stored_events e "
            "ON e.originator_id = l.stream AND e.originator_version = l.version "
            "WHERE l.position >= CASE WHEN p.position BETWEEN ? AND ? THEN ? "
            f"ELSE p.position END AND l.position < t.target AND ({concerning})) END "
            "FROM (SELECT COALESCE(?, MAX(position) + 1, 0) AS target FROM ledger_leaves) t, "
            "(SELECT COALESCE(MAX(position), 0) AS position FROM projection_positions "
            "WHERE name = ?) p",
            (PENDING_SCAN, lo, hi, hi, *(f"{m}:%" for m in sorted(modules or ())), target, name),
        )

    def _settle(self, name: str, unread: tuple[int, int], checked: Sequence[Any]) -> bool:
        """Act on what ``_pending`` found looking past ``unread``: catch up if the view has
        events to apply (True), else remember the stretch found to hold none (False)."""
        target, position, pending = checked
        if pending:
            self.catch_up_to(target)
            return True
        if position < target:  # looked through up to the target, and found nothing
            lo, hi = unread
            known = lo <= position <= hi
            self._unread[name] = (lo, max(hi, target)) if known else (position, target)
        return False

    def catch_up(self, progress: Progress | None = None, until: int | None = None) -> int:
        """Apply everything appended since each projection's position; return the new position.
        With ``until``, stop once every view has reached it: a reader waiting for the writes
        committed before it asked must not chase a long import's later ones."""
        keys = KeyRing(self.ledger.data_keys)
        if log_size(self.db) - min(self.positions().values(), default=0) <= PRELOAD_AFTER:
            return self._catch_up(keys, progress, until)
        keys.preload()
        with heap_frozen():
            return self._catch_up(keys, progress, until)

    def _catch_up(self, keys: KeyRing, progress: Progress | None, until: int | None) -> int:
        try:
            while True:
                positions = self.positions()
                start = min(positions.values(), default=0)
                if until is not None and start >= until:
                    return start
                entries = list(read_entries(self.ledger, start, BATCH, keys, self.modules))
                if not entries:
                    return start
                self._apply(positions, entries)
                if progress is not None:
                    progress(entries[-1].position + 1, log_size(self.db))
        finally:
            # What a view kept lasts one pass: a later pass may come after a disposal.
            with self._applying:
                for projection in self.projections.values():
                    projection.forget()

    def rebuild(self, names: Sequence[str] | None = None, progress: Progress | None = None) -> int:
        """Drop the named views (all by default) and replay them from the start of the log."""
        self.reset(names)
        return self.catch_up(progress)

    def reset(self, names: Sequence[str] | None = None) -> None:
        """Drop the named views (all by default) and make them empty, at position 0."""
        chosen = [self.projections[n] for n in (names or list(self.projections))]
        with self.db.write(lock=False) as c:
            for projection in chosen:
                projection.drop(c)
                projection.create(c, self.db.dialect)
                c.execute(
                    "UPDATE projection_positions SET position = 0 WHERE name = ?",
                    (projection.name,),
                )

    def _apply(self, positions: Mapping[str, int], entries: Sequence[Entry]) -> None:
        end = entries[-1].position + 1
        due = {name: position for name, position in positions.items() if position < end}
        with self._applying:  # a view's prepared batch and what it keeps are this thread's
            try:
                prepared = {
                    name: self._prepare(name, position, entries) for name, position in due.items()
                }
                with self.db.write(lock=False) as c:
                    for name, position in due.items():
                        self._claim(c, name, position, end)
                        self.projections[name].write(c, prepared[name])
            except BaseException:
                for name in due:
                    self.projections[name].forget()
                raise

    def _prepare(self, name: str, position: int, entries: Sequence[Entry]) -> Any:
        try:
            return self.projections[name].prepare(
                self.db, [e for e in entries if e.position >= position], position
            )
        except Exception:
            # What a view reads back while it prepares may already hold this batch, when a
            # runner in another process applied it meanwhile, and folding it again fails.
            # That batch is then the other runner's: back off as a lost claim does.
            if self.positions().get(name) != position:
                raise PositionMoved(f"projection {name} was moved by another runner") from None
            raise

    def _claim(self, cursor: Cursor, name: str, position: int, end: int) -> None:
        # Claim the batch before writing any row of it: a runner in another process that
        # applied it first has moved the position, and this one backs off instead of
        # colliding with the rows it wrote.
        cursor.execute(
            "UPDATE projection_positions SET position = ? WHERE name = ? AND position = ? "
            "RETURNING position",
            (end, name, position),
        )
        if cursor.fetchone() is None:  # not where this runner read it: someone applied it
            raise PositionMoved(f"projection {name} was moved by another runner")


FOLLOW_EVERY = 0.2  # seconds between rounds: short, as a round holds SQLite's writer
FOLLOW_LONGEST_WAIT = 5.0  # seconds between rounds at most while the store keeps failing
# A round is one catch-up pass, which beats after each batch it applies; on a busy machine a
# batch of BATCH events can take seconds. Without a beat for this long the follower is late.
FOLLOW_LATE_AFTER = 30.0


def follow(
    runner: Runner,
    stop: threading.Event,
    every_seconds: float = FOLLOW_EVERY,
    heartbeat: Heartbeat | None = None,
) -> None:
    """Keep the views caught up until ``stop`` is set. SQLite has no notifications, so this
    polls. A failed round is logged (by its type: messages could name records) and retried
    after a growing wait (``events/background.py``); a batch another runner applied first
    is no failure."""

    def catch_up_once() -> None:
        # A runner of a request's, or of another process, that applies a batch first did
        # this round's work.
        with contextlib.suppress(PositionMoved):
            runner.catch_up(progress=None if heartbeat is None else lambda *_: heartbeat.ran())

    what = "projections: catching up"
    keep_running(what, catch_up_once, stop, every_seconds, FOLLOW_LONGEST_WAIT, heartbeat)


class KeyRing:
    """The data keys one pass over the log needs, each fetched once by name.

    A pass (a catch-up, an ``as_of``) takes minutes at most; a key disposed of while it runs
    is treated as disposed after the pass. Disposal rebuilds the views it touches anyway.
    """

    def __init__(self, data_keys: DataKeys) -> None:
        self._data_keys = data_keys
        self._keys: dict[str, bytes | None] = {}

    def preload(self) -> None:
        """Every key at once: for long passes, one query instead of one per key."""
        self._keys.update(self._data_keys.all_keys())

    def get(self, name: str) -> bytes:
        if name not in self._keys:
            try:
                self._keys[name] = self._data_keys.get(name)
            except DataKeyDestroyed:
                self._keys[name] = None
        key = self._keys[name]
        if key is None:
            raise DataKeyDestroyed(f"no data key for {name.partition('#')[0]}")
        return key

    def mapper(self) -> LedgerMapper:
        return LedgerMapper(CanonicalTranscoder(), self)  # type: ignore[arg-type]


def log_size(db: Database) -> int:
    top = db.query("SELECT MAX(position) FROM ledger_leaves")[0][0]
    return 0 if top is None else top + 1


def read_records(db: Database, start: int, limit: int) -> list[tuple[Any, ...]]:
    """Raw (position, stream, version, topic, state) rows from ``start``, in log order."""
    if db.dialect == "sqlite":
        return db.query(
            "SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state "
            "FROM ledger_leaves l JOIN stored_events e "
            "ON e.originator_id = l.stream AND e.originator_version = l.version "
            f"WHERE l.position >= ? ORDER BY l.position LIMIT {int(limit)}",
            (start,),
        )
    # PostgreSQL's planner, working from statistics gathered while the tables were smaller,
    # chose to hash the whole events table to join the few leaves a follower's pass reads
    # (seen: 4 ms a pass at 2,000 events, growing with the log). Each leaf's event fetched by
    # its key (LIMIT 1 keeps the lateral lookup from being flattened into that join) cannot.
    return db.query(
        "SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state "
        "FROM (SELECT position, stream, version FROM ledger_leaves WHERE position >= ? "
        f"ORDER BY position LIMIT {int(limit)}) l CROSS JOIN LATERAL (SELECT originator_id, "
        "originator_version, topic, state FROM stored_events WHERE originator_id = l.stream "
        "AND originator_version = l.version LIMIT 1) e ORDER BY l.position",
        (start,),
    )


def read_entries(
    ledger: Ledger,
    start: int,
    limit: int = BATCH,
    keys: KeyRing | None = None,
    modules: frozenset[str] | None = None,
) -> Iterator[Entry]:
    """Up to ``limit`` entries from ``start``, decoded and opened with the practice's keys.

    With ``modules``, only their events are opened; any other comes with its header alone.
    """
    rows = read_records(ledger.db, start, limit)
    if not rows:
        return
    mapper = (keys or KeyRing(ledger.data_keys)).mapper()
    for position, stream, version, topic, state in rows:
        if modules is None or topic.partition(":")[0] in modules:
            yield decode_entry(mapper, position, stream, version, topic, bytes(state))
        else:
            yield Entry(position, read_record(bytes(state))[0], None)


def entries_at(ledger: Ledger, positions: Sequence[int]) -> list[Entry]:
    """The entries at the given positions (e.g. one subject's chain), in that order."""
    if not positions:
        return []
    mapper = KeyRing(ledger.data_keys).mapper()
    found: list[Entry] = []
    for chunk_start in range(0, len(positions), 500):
        chunk = list(positions[chunk_start : chunk_start + 500])
        marks = ", ".join("?" * len(chunk))
        with ledger.db.read() as c:
            c.execute(
                "SELECT l.position, e.originator_id, e.originator_version, e.topic, e.state "
                "FROM ledger_leaves l JOIN stored_events e "
                "ON e.originator_id = l.stream AND e.originator_version = l.version "
                f"WHERE l.position IN ({marks}) ORDER BY l.position",
                chunk,
            )
            rows = c.fetchall()
        found.extend(decode_entry(mapper, p, s, v, t, bytes(state)) for p, s, v, t, state in rows)
    return found


def decode_entry(
    mapper: LedgerMapper, position: int, stream: Any, version: int, topic: str, state: bytes
) -> Entry:
    try:
        header, event = mapper.open_record(topic, state)  # stream and version from its header
    except DataKeyDestroyed:
        return Entry(position, read_record(state)[0], None)
    return Entry(position, header, event)
