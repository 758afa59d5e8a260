"""Check a live store from its raw tables (docs/LEDGER_FORMAT.md §10).

Trusts nothing but the bytes: every hash, link, root and signature is recomputed. Problems are
collected, one per finding, each naming the position (or checkpoint size, or key statement), the
expected and the actual value; checking goes on after a problem so one run shows them all.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlparse
from uuid import UUID

from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
from verify.compact import CompactRange
from verify.errors import (
    ChainBroken,
    HashMismatch,
    MalformedInput,
    NotCanonical,
    ProofInvalid,
    VerificationError,
)
from verify.hashing import sha256, short
from verify.keyhistory import KeyStatement, key_for_size, verify_key_history
from verify.merkle import leaf_hash, root_from_leaf_hashes
from verify.records import (
    Header,
    Link,
    head_bytes,
    leaf_bytes,
    parse_header,
    parse_leaf,
    split_record,
)

BATCH = 5_000
MAX_PROBLEMS = 10_000

Progress = Callable[[int, int], None]
# Called for every event whose header parsed: (position, header, sealed payload).
OnEvent = Callable[[int, Header, bytes], None]


class Problem(NamedTuple):
    where: str
    error: VerificationError

    def line(self) -> str:
        return f"FAIL: {self.where}: {self.error}"


@dataclass
class StoreReport:
    events: int = 0
    checkpoints: int = 0
    keys: int = 0
    size: int = 0
    root: bytes = b""
    problems: list[Problem] = field(default_factory=list)

    def fail(self, where: str, error: VerificationError) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, error))

    @property
    def ok(self) -> bool:
        return not self.problems


class RawStore:
    """A read-only snapshot of the ledger tables, SQLite or PostgreSQL, with ``?`` placeholders."""

    def __init__(self, connection: Any, dialect: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self._cursor = connection.cursor()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, params)
        return self._cursor.fetchall()

    def close(self) -> None:
        try:
            self.connection.rollback()
        finally:
            self.connection.close()


def open_store(location: str) -> RawStore:
    """A SQLite file path (or ``sqlite:///path``) or a ``postgresql://`` URL (``?schema=``)."""
    if location.startswith(("postgresql://", "postgres://")):
        return _open_postgres(location)
    path = location.removeprefix("sqlite:///") if location.startswith("sqlite:") else location
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        connection.execute("BEGIN")
        connection.execute("SELECT 1 FROM ledger_leaves LIMIT 1")
    except sqlite3.Error as e:
        raise MalformedInput(f"cannot read a ledger at {path}: {e}") from None
    return RawStore(connection, "sqlite")


def _open_postgres(url: str) -> RawStore:
    try:
        import psycopg
    except ImportError:
        raise MalformedInput("checking PostgreSQL needs the psycopg package installed") from None
    parsed = urlparse(url)
    schema = parse_qs(parsed.query).get("schema", ["public"])[0]
    try:
        connection = psycopg.connect(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password or ""),
            dbname=parsed.path.strip("/"),
            connect_timeout=10,
        )
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        connection.execute("SELECT set_config('search_path', %s, true)", (schema,))
        connection.execute("SELECT 1 FROM ledger_leaves LIMIT 1")
    except psycopg.Error as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise MalformedInput(f"cannot read a ledger at that PostgreSQL URL: {first_line}") from None
    return RawStore(connection, "postgres")


def _stream_hex(value: Any) -> str:
    return value.hex if isinstance(value, UUID) else str(value)


def check_store(
    store: RawStore,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    on_event: OnEvent | None = None,
) -> StoreReport:
    """Recompute everything; the report's ``problems`` are empty exactly when the store is valid."""
    report = StoreReport()
    history = _check_keys(store, report, trusted_key)
    checkpoints = _load_checkpoints(store, report)
    total = store.rows("SELECT COUNT(*) FROM ledger_leaves")[0][0]
    walk = _Walk(report, history, checkpoints, on_event)
    for rows in _leaf_batches(store):
        walk.batch(rows)
        if progress is not None:
            progress(walk.size, total)
    walk.finish()
    _check_unleafed_events(store, report, walk.events)
    _check_links_index(store, report, walk.links)
    report.size = walk.size
    report.root = walk.range.root()
    report.events = walk.events
    return report


def verify_store(location: str, trusted_key: str | None = None) -> StoreReport:
    """Return the report of a valid store; raise the first problem of an invalid one."""
    store = open_store(location)
    try:
        report = check_store(store, trusted_key)
    finally:
        store.close()
    if report.problems:
        first = report.problems[0]
        raise type(first.error)(f"{first.where}: {first.error} ({len(report.problems)} problems)")
    return report


def _check_keys(
    store: RawStore, report: StoreReport, trusted_key: str | None
) -> list[KeyStatement]:
    rows = store.rows(
        "SELECT seq, statement, signature_self, signature_prev FROM ledger_keys ORDER BY seq"
    )
    report.keys = len(rows)
    try:
        return verify_key_history(rows, trusted_key)
    except VerificationError as e:
        report.fail("key history", e)
        return []


def _load_checkpoints(store: RawStore, report: StoreReport) -> list[UnverifiedCheckpoint]:
    checkpoints = []
    for size, note in store.rows("SELECT size, note FROM ledger_checkpoints ORDER BY size"):
        try:
            checkpoint = parse_note(bytes(note))
        except VerificationError as e:
            report.fail(f"checkpoint at size {size}", e)
            continue
        if checkpoint.size != size:
            report.fail(
                f"checkpoint at size {size}",
                MalformedInput(f"its note says size {checkpoint.size}, the row says {size}"),
            )
            continue
        checkpoints.append(checkpoint)
    report.checkpoints = len(checkpoints)
    return checkpoints


def _leaf_batches(store: RawStore) -> Iterator[list[tuple[Any, ...]]]:
    start = 0
    while True:
        rows = store.rows(
            "SELECT l.position, l.stream, l.version, l.leaf, e.topic, e.state, e.position "
            "FROM ledger_leaves l LEFT JOIN stored_events e "
            "ON e.originator_id = l.stream AND e.originator_version = l.version "
            "WHERE l.position >= ? ORDER BY l.position LIMIT ?",
            (start, BATCH),
        )
        if not rows:
            return
        yield rows
        start = rows[-1][0] + 1


class _Walk:
    """The state carried along the log: expected position, subject heads, the tree so far."""

    def __init__(
        self,
        report: StoreReport,
        history: list[KeyStatement],
        checkpoints: list[UnverifiedCheckpoint],
        on_event: OnEvent | None,
    ) -> None:
        self.report = report
        self.history = history
        self.pending = list(reversed(checkpoints))  # smallest last, popped as the walk passes
        self.on_event = on_event
        self.range = CompactRange()
        self.heads: dict[str, tuple[int, int]] = {}
        self.head_hashes: dict[str, bytes] = {}
        self.links: set[tuple[str, int, int]] = set()
        self.size = 0
        self.events = 0
        self._check_checkpoints_due()

    def batch(self, rows: list[tuple[Any, ...]]) -> None:
        for position, stream, version, leaf, topic, state, event_position in rows:
            if position != self.size:
                self.report.fail(
                    f"position {self.size}",
                    ChainBroken(
                        f"positions {self.size}..{position - 1} are missing "
                        f"(the next leaf is at position {position})"
                    ),
                )
                self.size = position
            leaf = bytes(leaf)
            self.range.append(leaf_hash(leaf))
            if state is not None and event_position != position:
                self.report.fail(
                    f"position {position}",
                    ChainBroken(f"the event row says position {event_position}"),
                )
            self._check_event(position, _stream_hex(stream), version, leaf, topic, state)
            self.size += 1
            self._check_checkpoints_due()

    def _check_event(
        self, position: int, stream: str, version: int, leaf: bytes, topic: Any, state: Any
    ) -> None:
        where = f"position {position}"
        fail = self.report.fail
        if state is None:
            fail(where, ChainBroken(f"leaf names event {stream} v{version}, which is missing"))
            self._follow_leaf(position, leaf)
            return
        self.events += 1
        try:
            header_bytes, sealed = split_record(bytes(state))
            header = parse_header(header_bytes)
        except VerificationError as e:
            fail(f"{where} ({stream} v{version})", e)
            self._follow_leaf(position, leaf)
            return
        if header.stream.replace("-", "") != stream or header.version != version:
            fail(
                where,
                ChainBroken(
                    f"header names {header.stream} v{header.version}, "
                    f"the row is {stream} v{version}"
                ),
            )
        if header.type != topic:
            fail(where, HashMismatch(f"row topic is {topic!r}, header type is {header.type!r}"))
        sealed_hash = sha256(sealed)
        if sealed_hash != header.sealed:
            fail(
                where,
                HashMismatch(
                    f"sealed payload hashes to {short(sealed_hash)}, "
                    f"header says {short(header.sealed)}"
                ),
            )
        digest = sha256(header_bytes)
        links = self._advance(header.subjects, position)
        if leaf != leaf_bytes(digest, links):
            self._diagnose_leaf(where, leaf, digest, links)
        if self.on_event is not None:
            self.on_event(position, header, sealed)

    def _advance(self, subjects: Sequence[str], position: int) -> list[Link]:
        links: list[Link] = []
        for subject in subjects:
            seq, prev = self.heads.get(subject, (0, None))
            links.append((subject, seq + 1, prev))
            self.heads[subject] = (seq + 1, position)
            self.head_hashes.pop(subject, None)
            self.links.add((subject, seq + 1, position))
        return links

    def _follow_leaf(self, position: int, leaf: bytes) -> None:
        # Without a readable event, keep the chains going from what the leaf itself claims,
        # so one bad event is one problem rather than one per later event of its subjects.
        try:
            parsed = parse_leaf(leaf)
        except VerificationError as e:
            self.report.fail(f"position {position}", e)
            return
        self._advance([subject for subject, _, _ in parsed.links], position)

    def _diagnose_leaf(self, where: str, leaf: bytes, digest: bytes, links: list[Link]) -> None:
        try:
            parsed = parse_leaf(leaf)
        except VerificationError as e:
            self.report.fail(where, e)
            return
        if parsed.event != digest:
            self.report.fail(
                where,
                HashMismatch(
                    f"leaf commits to event {short(parsed.event)}, "
                    f"the header hashes to {short(digest)}"
                ),
            )
        elif list(parsed.links) != links:
            self.report.fail(
                where,
                ChainBroken(f"leaf links are {list(parsed.links)}, expected {links}"),
            )
        else:
            self.report.fail(where, NotCanonical("leaf bytes are not canonical"))

    def _check_checkpoints_due(self) -> None:
        while self.pending and self.pending[-1].size == self.size:
            self._check_checkpoint(self.pending.pop())

    def _check_checkpoint(self, checkpoint: UnverifiedCheckpoint) -> None:
        where = f"checkpoint at size {checkpoint.size}"
        if self.history:
            key = key_for_size(self.history, checkpoint.size)
            try:
                if checkpoint.origin != key.origin:
                    raise ProofInvalid(
                        f"origin is {checkpoint.origin!r}, the log's is {key.origin!r}"
                    )
                verify_checkpoint(checkpoint, key.public_key)
            except VerificationError as e:
                self.report.fail(where, e)
        root = self.range.root()
        if checkpoint.root != root:
            self.report.fail(
                where,
                ProofInvalid(f"root is {short(checkpoint.root)}, the leaves give {short(root)}"),
            )
        heads_root = self._heads_root()
        if checkpoint.subjects_root != heads_root:
            self.report.fail(
                where,
                ProofInvalid(
                    f"subject-heads root is {short(checkpoint.subjects_root)}, "
                    f"the leaves give {short(heads_root)}"
                ),
            )

    def _heads_root(self) -> bytes:
        hashes = self.head_hashes
        for subject, (seq, position) in self.heads.items():
            if subject not in hashes:
                hashes[subject] = leaf_hash(head_bytes(subject, seq, position))
        ordered = sorted(hashes, key=str.encode)
        return root_from_leaf_hashes([hashes[s] for s in ordered])

    def finish(self) -> None:
        for checkpoint in self.pending:
            self.report.fail(
                f"checkpoint at size {checkpoint.size}",
                ChainBroken(
                    f"the log has only {self.size} leaves: events after position "
                    f"{self.size - 1} were deleted"
                ),
            )


def _check_unleafed_events(store: RawStore, report: StoreReport, seen: int) -> None:
    (count,) = store.rows("SELECT COUNT(*) FROM stored_events")[0]
    if count == seen:
        return
    orphans = store.rows(
        "SELECT originator_id, originator_version FROM stored_events e WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_leaves l WHERE l.stream = e.originator_id "
        "AND l.version = e.originator_version) LIMIT 20"
    )
    for stream, version in orphans:
        report.fail(
            f"event {_stream_hex(stream)} v{version}",
            ChainBroken("stored event has no leaf in the log"),
        )
    if not orphans:
        report.fail("stored_events", ChainBroken(f"{count} events, {seen} with leaves"))


def _check_links_index(
    store: RawStore, report: StoreReport, expected: set[tuple[str, int, int]]
) -> None:
    stored = {
        (s, q, p) for s, q, p in store.rows("SELECT subject, seq, position FROM ledger_links")
    }
    for subject, seq, position in sorted(stored - expected, key=lambda r: r[2])[:20]:
        report.fail(
            f"position {position}",
            ChainBroken(f"ledger_links has {subject} #{seq} here, which no leaf carries"),
        )
    for subject, seq, position in sorted(expected - stored, key=lambda r: r[2])[:20]:
        report.fail(
            f"position {position}",
            ChainBroken(f"ledger_links lacks {subject} #{seq}, which the leaf carries"),
        )
