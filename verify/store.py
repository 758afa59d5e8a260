"""Check a live store from its raw tables (docs/LEDGER_FORMAT.md §10).

Trusts nothing but the bytes: every hash, link, root and signature is recomputed. Problems are
collected, one per finding, each naming the position (or checkpoint size, or key statement), the
expected and the actual value; checking goes on after a problem so one run shows them all.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlparse

from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
from verify.compact import CompactRange, HeadsTree
from verify.errors import (
    ChainBroken,
    MalformedInput,
    ProofInvalid,
    VerificationError,
)
from verify.hashing import short
from verify.heads import check_heads
from verify.keyhistory import KeyStatement, key_for_size, verify_key_history
from verify.ranges import (
    MAX_RANGE_SIZE,
    RANGE_SIZE,
    RangeResult,
    check_range,
    links_digest,
    stream_hex,
)
from verify.tiles import TILE_WIDTH, TileStream, tile_problem
from verify.witness import OutsideCheckpoint, check_against_log

MAX_PROBLEMS = 10_000
TAIL_RANGE_SIZE = 2048  # the shortest range towards the end of the log (see _spans)
AHEAD = 2  # ranges handed to each worker process beyond those it has finished

Progress = Callable[[int, int], None]


class Problem(NamedTuple):
    where: str
    error: VerificationError

    def line(self) -> str:
        # Checks shared with other callers name their place themselves; say it once.
        message = str(self.error).removeprefix(f"{self.where}: ")
        return f"FAIL: {self.where}: {message}"


@dataclass
class StoreReport:
    events: int = 0
    checkpoints: int = 0
    keys: int = 0
    size: int = 0
    root: bytes = b""
    tiles: int = 0  # stored tiles recomputed from the leaves
    problems: list[Problem] = field(default_factory=list)

    def fail(self, where: str, error: VerificationError) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(where, error))

    @property
    def ok(self) -> bool:
        return not self.problems


class RawStore:
    """A read-only snapshot of the ledger tables, SQLite or PostgreSQL, with ``?`` placeholders."""

    def __init__(self, connection: Any, dialect: str, location: str) -> None:
        self.connection = connection
        self.dialect = dialect
        self.location = location
        self._cursor = connection.cursor()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self._cursor.execute(sql, params)
        return self._cursor.fetchall()

    def stream(self, sql: str, batch: int = 4096) -> Iterator[tuple[Any, ...]]:
        return stream_rows(self.connection, self.dialect, sql, batch)

    def close(self) -> None:
        try:
            self.connection.rollback()
        finally:
            self.connection.close()


def stream_rows(
    connection: Any, dialect: str, sql: str, batch: int = 4096
) -> Iterator[tuple[Any, ...]]:
    """The rows of a query as tuples, read ``batch`` at a time and never all held at once,
    through a cursor of their own on ``connection`` (so other statements may run on it
    meanwhile; on PostgreSQL a server-side cursor, which psycopg's ordinary one is not)."""
    if dialect == "postgres":
        from psycopg.rows import tuple_row  # as _open_postgres: only a PostgreSQL store needs it

        cursor = connection.cursor(name="verify_stream", row_factory=tuple_row)
    else:
        cursor = connection.cursor()
        cursor.row_factory = None  # tuples, whatever the connection's rows are
    try:
        cursor.execute(sql)
        while rows := cursor.fetchmany(batch):
            yield from rows
    finally:
        cursor.close()


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
    return RawStore(connection, "sqlite", location)


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
    return RawStore(connection, "postgres", url)


def check_store(
    store: RawStore,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    outside: OutsideCheckpoint | None = None,
) -> StoreReport:
    """Recompute everything; the report's ``problems`` are empty exactly when the store is valid.

    With ``outside`` (a checkpoint held outside the store, verify.witness), the store must also
    hold that tree as a prefix of its own: a rollback or rewrite below it is a problem.

    The log's ranges are checked by ``workers`` processes (default: one per core): this one and
    ``workers - 1`` others, each reading its own rows; the results are stitched together here in
    log order. ``workers=1`` checks them all in this process. Worker processes start from a
    fresh interpreter (forkserver), so a script that calls this with more than one worker needs
    the ``if __name__ == "__main__":`` guard that multiprocessing asks for.
    """
    if workers is None:
        workers = os.cpu_count() or 1
    report = StoreReport()
    history = _check_keys(store, report, trusted_key)
    checkpoints = _load_checkpoints(store, report)
    size = store.rows("SELECT COALESCE(MAX(position) + 1, 0) FROM ledger_leaves")[0][0]
    tiles = _has_table(store, "ledger_tiles")
    stitch = _Stitch(report, history, checkpoints, _TileCheck(store, report) if tiles else None)
    spans = _spans(size, workers)
    sizes = [c.size for c in checkpoints]
    if outside is not None:
        stitch.wanted.add(outside.checkpoint.size)
        sizes = sorted({*sizes, outside.checkpoint.size})  # a size twice would count twice
    results = _check_ranges(store, spans, sizes, workers, tiles)
    # while the workers, if any, check their first ranges
    stitch.index_links, stray_links = _index_links(store, spans)
    (stored,) = store.rows("SELECT COUNT(*) FROM stored_events")[0]
    for result in results:
        stitch.add(result)
        if progress is not None:
            progress(result.stop, size)
    stitch.finish(size)
    if size and not any(c.size for c in checkpoints):
        # Without one, nothing signed vouches for any event: the whole log is an unwitnessed
        # tail that whoever holds the database may have rewritten (§10).
        report.fail(
            "checkpoints",
            ChainBroken(f"the log has {size} leaves and no checkpoint signs any of them"),
        )
    if outside is not None:
        at_size = stitch.roots_at.get(outside.checkpoint.size)
        for error in check_against_log(outside, history, size, at_size):
            report.fail(outside.where, error)
    _check_unleafed_events(store, report, stored, stitch.events)
    if stitch.tiles is not None:
        report.tiles = stitch.tiles.finish(stitch.range.size)
    if stray_links or not stitch.links_agree:
        report.fail(
            "ledger_links",
            ChainBroken("the links index does not hold exactly the links the leaves carry"),
        )
    if _has_table(store, "ledger_heads"):
        # The stored subject-heads leaves, recomputed from the links just compared with the
        # leaves (verify/heads.py).
        for where, error in check_heads(store.rows):
            report.fail(where, error)
    report.size = size
    report.root = stitch.range.root()
    report.events = stitch.events
    return report


def _range_size(size: int, workers: int) -> int:
    """The largest power of two from RANGE_SIZE to MAX_RANGE_SIZE that still gives every
    worker three ranges or more. Each range's result carries the heads of every subject it
    names, to be passed back and stitched, so fewer, larger ranges cost less; three a worker
    keep the workers finishing close together."""
    step = RANGE_SIZE
    while step < MAX_RANGE_SIZE and -(-size // (2 * step)) >= 3 * max(workers, 1):
        step *= 2
    return step


def _spans(size: int, workers: int) -> list[tuple[int, int]]:
    """The log cut into ranges of ``_range_size``; towards its end, once less than one such
    range a worker is left, each range is half as long as the one before (down to
    TAIL_RANGE_SIZE), so that the workers finish close together and the last results, stitched
    while a core idles, are small. Each range starts at a multiple of its power-of-two length,
    so its subtrees align with the prefix before it."""
    step = _range_size(size, workers)
    spans = []
    for_each = max(workers, 1)
    a = 0
    while a < size:
        while for_each > 1 and step > TAIL_RANGE_SIZE and size - a < for_each * step:
            step //= 2
        spans.append((a, min(a + step, size)))
        a += step
    return spans


def _check_ranges(
    store: RawStore, spans: list[tuple[int, int]], sizes: list[int], workers: int, tiles: bool
) -> Iterator[RangeResult]:
    """Range results in log order, from this process and ``workers - 1`` others.

    The ranges are handed out in order: the pool is kept AHEAD ranges a process ahead, and this
    process, between stitching the results, checks the next range itself whenever the result
    due next is not in yet. A worker writes its result to a file of a private temporary
    directory and hands back the file's name: a result is a megabyte or two, and passing that
    through the pool's pipe needs this process's GIL for every 64 KB, which it mostly holds
    while checking and stitching; the worker would wait on it.
    """
    if workers <= 1 or len(spans) <= 1:
        return (check_range(store, a, b, sizes, tiles) for a, b in spans)
    # forkserver: workers start clean, never sharing the parent's database connections.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_forkserver_preload())
    try:
        folder = tempfile.TemporaryDirectory(prefix="verify-store-", ignore_cleanup_errors=True)
    except OSError:  # nowhere to pass results through: check every range here
        return (check_range(store, a, b, sizes, tiles) for a, b in spans)
    pool = ProcessPoolExecutor(max_workers=workers - 1, mp_context=context)
    results: list[RangeResult | Future[str] | None] = [None] * len(spans)
    running: set[Future[str]] = set()
    handed = 0  # spans[:handed] are being checked or checked
    broken = False  # the pool cannot run jobs (e.g. a script without the __main__ guard)

    def top_up() -> None:
        nonlocal handed, broken
        running.difference_update([f for f in running if f.done()])
        while not broken and handed < len(spans) and len(running) < AHEAD * (workers - 1):
            a, b = spans[handed]
            try:
                future = pool.submit(_range_job, (store.location, a, b, sizes, tiles, folder.name))
            except BrokenProcessPool:
                broken = True
                return
            results[handed] = future
            running.add(future)
            handed += 1

    def take(i: int) -> RangeResult:
        nonlocal broken
        done = results[i]
        results[i] = None
        if isinstance(done, RangeResult):
            return done
        assert done is not None
        try:
            path = Path(done.result())
            result: RangeResult = pickle.loads(path.read_bytes())
            path.unlink()
        except (BrokenProcessPool, OSError) as e:  # no pool, or no room for its result file
            broken = broken or isinstance(e, BrokenProcessPool)
            a, b = spans[i]
            return check_range(store, a, b, sizes, tiles)
        return result

    def in_order() -> Iterator[RangeResult]:
        nonlocal handed
        try:
            for i in range(len(spans)):
                while True:
                    top_up()
                    due = results[i]
                    if isinstance(due, Future) and not due.done() and handed < len(spans):
                        a, b = spans[handed]  # meanwhile, the next range here
                        results[handed] = check_range(store, a, b, sizes, tiles)
                        handed += 1
                        continue
                    if due is None:  # not handed out: the pool is broken or behind
                        a, b = spans[i]
                        results[i] = check_range(store, a, b, sizes, tiles)
                        handed = max(handed, i + 1)
                    yield take(i)
                    break
        finally:
            # After the last result the workers exit on their own; if the stitch stopped
            # early, wait for the jobs in flight, so that no file is written after the cleanup.
            in_flight = any(not future.done() for future in running)
            pool.shutdown(wait=in_flight, cancel_futures=True)
            folder.cleanup()

    top_up()
    return in_order()


def _forkserver_preload() -> list[str]:
    """What the fork server imports once, so that each worker forks with it loaded.

    Every worker runs the main module again (as ``__mp_main__``, in case a job names something
    of it), which means importing all that it imports: for a script like bench/verify_store.py
    about 0.15 s per worker and per check. Preloading "__main__" does not load it (Python 3.11
    never passes the fork server the main module's path), so the modules the main module's
    names come from are preloaded instead, and the workers find them loaded.
    """
    names = {__name__}
    main = sys.modules.get("__main__")
    for value in list(vars(main).values()) if main is not None else []:
        if isinstance(value, ModuleType):
            name = value.__name__
        elif isinstance(value, type | FunctionType):
            name = value.__module__
        else:
            continue
        if name != "__main__" and name in sys.modules:
            names.add(name)
    return ["__main__", *sorted(names)]


def _range_job(job: tuple[str, int, int, list[int], bool, str]) -> str:
    """Check one range in a worker; its result goes to a file in ``folder``, named back."""
    location, a, b, sizes, tiles, folder = job
    store = open_store(location)
    try:
        result = check_range(store, a, b, sizes, tiles)
    finally:
        store.close()
    path = Path(folder) / f"{a}.pickle"
    path.write_bytes(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    return str(path)


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


class _Stitch:
    """Joins range results in log order: chains across range edges, roots at checkpoints."""

    def __init__(
        self,
        report: StoreReport,
        history: list[KeyStatement],
        checkpoints: list[UnverifiedCheckpoint],
        tiles: _TileCheck | None = None,
    ) -> None:
        self.report = report
        self.tiles = tiles
        self.history = history
        self.checkpoints = {c.size: c for c in checkpoints}
        self.range = CompactRange()
        self.heads: dict[str, tuple[int, int]] = {}
        self.tree = HeadsTree()
        self.events = 0
        # per range, (count, links_digest) of the links ledger_links holds for its positions
        self.index_links: list[tuple[int, bytes]] = []
        self.links_agree = True  # every range's so far the same as the leaves'
        self._ranges = 0
        self.wanted: set[int] = set()  # sizes whose roots are kept in roots_at
        self.roots_at: dict[int, tuple[bytes, bytes]] = {0: (self.range.root(), self.tree.root())}
        if 0 in self.checkpoints:
            self._check_checkpoint(self.checkpoints.pop(0), self.range.root(), self.tree.root())

    def add(self, result: RangeResult) -> None:
        for where, error in result.problems:
            self.report.fail(where, error)
        self.events += result.events
        i = self._ranges
        self._ranges += 1
        if i >= len(self.index_links) or self.index_links[i] != (result.link_count, result.links):
            self.links_agree = False
        if self.tiles is not None:
            self.tiles.add(result)
        for subject, (seq, prev, position) in result.first_links.items():
            known_seq, known_position = self.heads.get(subject, (0, None))
            if (seq, prev) != (known_seq + 1, known_position):
                self.report.fail(
                    f"position {position}",
                    ChainBroken(
                        f"link for {subject} is [#{seq}, prev {prev}], "
                        f"expected [#{known_seq + 1}, prev {known_position}]"
                    ),
                )
        for size in sorted(result.at_sizes):
            nodes, changed = result.at_sizes[size]
            self.tree.update(changed)
            partial = self.range.copy()
            partial.extend(nodes)
            if size in self.wanted:
                self.roots_at[size] = (partial.root(), self.tree.root())
            checkpoint = self.checkpoints.pop(size, None)
            if checkpoint is not None:
                self._check_checkpoint(checkpoint, partial.root(), self.tree.root())
        self.tree.update(result.tail_heads)
        self.heads.update(result.heads)
        self.range.extend(result.nodes)

    def _check_checkpoint(
        self, checkpoint: UnverifiedCheckpoint, root: bytes, heads_root: bytes
    ) -> None:
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
        if checkpoint.root != root:
            self.report.fail(
                where,
                ProofInvalid(f"root is {short(checkpoint.root)}, the leaves give {short(root)}"),
            )
        if checkpoint.subjects_root != heads_root:
            self.report.fail(
                where,
                ProofInvalid(
                    f"subject-heads root is {short(checkpoint.subjects_root)}, "
                    f"the leaves give {short(heads_root)}"
                ),
            )

    def finish(self, size: int) -> None:
        for checkpoint in self.checkpoints.values():
            self.report.fail(
                f"checkpoint at size {checkpoint.size}",
                ChainBroken(
                    f"the log has only {size} leaves: events after position {size - 1} were deleted"
                ),
            )


def _check_unleafed_events(store: RawStore, report: StoreReport, count: int, seen: int) -> None:
    if count == seen:
        return
    orphans = store.rows(
        "SELECT originator_id, originator_version FROM stored_events e WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_leaves l WHERE l.stream = e.originator_id "
        "AND l.version = e.originator_version) LIMIT 20"
    )
    for stream, version in orphans:
        report.fail(
            f"event {stream_hex(stream)} v{version}",
            ChainBroken("stored event has no leaf in the log"),
        )
    if not orphans:
        report.fail("stored_events", ChainBroken(f"{count} events, {seen} with leaves"))


def _index_links(
    store: RawStore, spans: list[tuple[int, int]]
) -> tuple[list[tuple[int, bytes]], int]:
    """Per range, (count, links_digest) of the rows of ``ledger_links`` whose positions lie in
    it, read in position order and held one range at a time; and how many rows lie in none
    (or whose position is not an integer). Compared with what each range's leaves carry, the
    two agree exactly when the table holds exactly the links the leaves carry."""
    digests: list[tuple[int, bytes]] = []
    stray = 0
    held: list[tuple[Any, ...]] = []  # the rows of spans[len(digests)]
    for row in store.stream("SELECT position, subject, seq FROM ledger_links ORDER BY position"):
        position = row[0]
        if type(position) is not int:
            stray += 1
            continue
        while len(digests) < len(spans) and position >= spans[len(digests)][1]:
            digests.append((len(held), links_digest(held)))
            held = []
        if len(digests) == len(spans) or position < spans[len(digests)][0]:
            stray += 1
            continue
        held.append(row)
    while len(digests) < len(spans):
        digests.append((len(held), links_digest(held)))
        held = []
    return digests, stray


class _TileCheck:
    """Every stored tile recomputed from the leaves (LEDGER_FORMAT.md §12), each that
    disagrees named by its level and index and the first hash in it that does (its index in the
    level). The ranges compare their own level-0 tiles and hand on the roots of the full ones,
    the entries of level 1; the levels above are recomputed here from those, in log order.
    The tiles are a cache the server reads proofs and roots from; here they are trusted for
    nothing. A store made before tiles has no table: nothing to check."""

    def __init__(self, store: RawStore, report: StoreReport) -> None:
        self.store = store
        self.report = report
        self.checked = 0
        self.problems: list[tuple[int, int, str, VerificationError]] = []
        self.stream = TileStream(self._compare, level=1)

    def add(self, result: RangeResult) -> None:
        self.checked += result.tiles_checked
        self._keep(result.tile_problems)
        for root in result.tile_roots:
            self.stream.add(root)

    def _keep(self, problems: list[tuple[int, int, str, VerificationError]]) -> None:
        self.problems += problems[: MAX_PROBLEMS - len(self.problems)]

    def _compare(self, level: int, index: int, expected: bytes) -> None:
        self.checked += 1
        rows = self.store.rows(
            "SELECT hashes FROM ledger_tiles WHERE level = ? AND idx = ?", (level, index)
        )
        problem = tile_problem(level, index, bytes(rows[0][0]) if rows else None, expected)
        if problem is not None:
            self._keep([(level, index, *problem)])

    def finish(self, leaves: int) -> int:
        """Report what disagrees, by level and index; return how many tiles were checked."""
        counts = self.stream.finish()
        counts[0] = -(-leaves // TILE_WIDTH)
        for _, _, where, error in sorted(self.problems, key=itemgetter(0, 1)):
            self.report.fail(where, error)
        for (level,) in self.store.rows("SELECT DISTINCT level FROM ledger_tiles ORDER BY level"):
            (extra,) = self.store.rows(
                "SELECT MIN(idx) FROM ledger_tiles WHERE level = ? AND idx >= ?",
                (level, counts.get(int(level), 0)),
            )[0]
            if extra is not None:
                self.report.fail(
                    f"tile {level}/{extra}",
                    ChainBroken(f"the log of {leaves} leaves has no such tile"),
                )
        return self.checked


def _has_table(store: RawStore, name: str) -> bool:
    if store.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = (
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_name = ?"
        )
    return bool(store.rows(sql, (name,)))
