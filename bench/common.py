"""Shared pieces of the benchmarks: the workload aggregate, practices, schemas, machine info.

Run the benchmarks from the repository root (``python bench/append.py``); this module is
imported as ``common`` from the script's own directory.
"""

from __future__ import annotations

import cProfile
import os
import platform
import pstats
import shlex
import sqlite3
import statistics
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from domain.practice import Practice
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger, create_practice_files, record_genesis_key

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "bench" / "out"  # gitignored
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
# About the size of a short clinical note; the same text on both sides of every comparison.
NOTE_TEXT = "BP 128/82, HR 71. Reviewed labs; continue current plan. Follow up in 6 weeks." * 2


class Chart(Aggregate):
    """The workload's aggregate (as tests/support.py's Chart): events name their subjects."""

    @event("Opened")
    def __init__(self, subjects: tuple[str, ...], text: str) -> None:
        self.texts = [text]

    @event("Noted")
    def note(self, subjects: tuple[str, ...], text: str) -> None:
        self.texts.append(text)


class PlainApp(Application):
    """The baseline: eventsourcing's own Application, mapper and recorders, nothing else."""

    name = "PlainBench"


def subject_pool(n: int, seed: int) -> list[str]:
    """``n`` patient subjects, the same for every run with the same seed."""
    return [f"patient:{UUID(int=(seed << 64) + i)}" for i in range(n)]


# --- practices and stores -------------------------------------------------------------------


def new_practice(
    home: Path, database_url: str | None = None, **cadence: Any
) -> tuple[Ledger, StoreConfig]:
    """A fresh practice, initialised as ``chartledger init`` does (api/cli.py cmd_init)."""
    config = StoreConfig(home=home, database_url=database_url)
    practice, signing_key = create_practice_files(config, "Bench Practice")
    ledger = Ledger(config, **cadence)
    record_genesis_key(ledger, signing_key)
    ledger.save(Practice(practice_id=UUID(practice["practice_id"]), name="Bench Practice"))
    ledger.checkpointer.issue()
    return ledger, config


def plain_sqlite_app(path: Path) -> PlainApp:
    return PlainApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path)})


def plain_postgres_app(database_url: str, schema: str) -> PlainApp:
    pg = parse_database_url(database_url)
    return PlainApp(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password,
            "POSTGRES_SCHEMA": schema,
        }
    )


def with_schema(database_url: str, schema: str) -> str:
    base = database_url.split("?", 1)[0]
    return f"{base}?schema={schema}"


def fresh_schema_name(tag: str) -> str:
    return f"bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _pg_connect(database_url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(parse_database_url(database_url).conninfo(), autocommit=True)


def create_schema(database_url: str, schema: str) -> None:
    with _pg_connect(database_url) as conn:
        conn.execute(psycopg.sql.SQL("CREATE SCHEMA {0}").format(psycopg.sql.Identifier(schema)))


def drop_schema(database_url: str, schema: str) -> None:
    with _pg_connect(database_url) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP SCHEMA IF EXISTS {0} CASCADE").format(
                psycopg.sql.Identifier(schema)
            )
        )


def postgres_reachable(database_url: str) -> str | None:
    """The server's version string, or None when it cannot be reached."""
    try:
        with _pg_connect(database_url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error:
        return None
    return None if row is None else str(row[0])


@contextmanager
def schemas(database_url: str) -> Iterator[list[str]]:
    """Schemas appended to the yielded list are dropped on the way out, whatever happens."""
    made: list[str] = []
    try:
        yield made
    finally:
        for schema in made:
            try:
                drop_schema(database_url, schema)
            except psycopg.Error as e:
                print(f"warning: could not drop schema {schema}: {e}", file=sys.stderr)


# --- reporting ------------------------------------------------------------------------------


def header(title: str, pg_version: str | None = None) -> None:
    """The command line and what it ran on."""
    print(f"== {title}")
    print(f"command:  {shlex.join([Path(sys.executable).name, *sys.argv])}")
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    print(f"machine:  nproc={os.cpu_count()}  cpu={cpu}  {platform.system()} {platform.release()}")
    print(
        f"software: Python {platform.python_version()}  SQLite {sqlite3.sqlite_version}"
        + (f"  PostgreSQL {pg_version}" if pg_version else "")
    )


def median(values: list[float]) -> float:
    return statistics.median(values)


def profile_call(fn: Any, *args: Any, top: int = 25) -> Any:
    """Run ``fn`` under cProfile; print the top lines by cumulative and by own time, in % of all."""
    profiler = cProfile.Profile()
    result = profiler.runcall(fn, *args)
    stats = pstats.Stats(profiler)
    total = stats.total_tt or 1e-9  # type: ignore[attr-defined]
    rows = stats.stats  # type: ignore[attr-defined]
    print(f"cProfile: {total:.3f} s profiled (cProfile overhead inflates Python-heavy code)")
    for title, index in (("cumulative", 3), ("own time", 2)):
        print(f"-- top {top} by {title}")
        print(f"{'cum%':>6} {'own%':>6} {'cum s':>8} {'own s':>8} {'calls':>9}  function")
        ranked = sorted(rows.items(), key=lambda kv: kv[1][index], reverse=True)[:top]
        for (path, line, name), (_, calls, own, cum, _) in ranked:
            where = f"{_short_path(path)}:{line}" if line else path
            print(
                f"{100 * cum / total:6.1f} {100 * own / total:6.1f} {cum:8.3f} {own:8.3f} "
                f"{calls:9d}  {name}  ({where})"
            )
    return result


def _short_path(path: str) -> str:
    for marker in ("site-packages/", str(REPO) + "/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return Path(path).name
