"""Backup and restore throughput in events/s, next to a baseline in the same run.

The SQLite store is bench/verify_store.py's (100 events per save over ~5,000 patients), built
once and cached under bench/out/; every timed run works on a fresh copy of it, so the cache is
never changed (a backup appends its own event).

    python bench/backup.py                      # 100,000 events, SQLite and (if reachable) PG
    python bench/backup.py --events 20000 --no-postgres
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from common import (
    DEFAULT_PG_URL,
    create_schema,
    fresh_schema_name,
    header,
    median,
    postgres_reachable,
    schemas,
    with_schema,
)
from verify_store import build, store_home

from events.backup_check import check_backup
from events.backup_restore import restore_backup
from events.backup_write import EVENTS_SQL, FETCH, take_backup
from events.config import StoreConfig, parse_database_url
from events.keys import read_master_key
from events.ledger import Ledger
from verify.store import open_store


def copy_home(source: Path, target: Path) -> StoreConfig:
    """A copy of the practice home, its database copied with SQLite's own backup API."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("chartledger.sqlite3*"))
    sqlite_copy(source / "chartledger.sqlite3", target / "chartledger.sqlite3")
    return StoreConfig(home=target)


def sqlite_copy(source: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=4096)
    finally:
        dst.close()
        src.close()


def raw_read(location: str) -> int:
    """Every event row with its leaf, in one snapshot, by position windows: no checks, no files."""
    store = open_store(location)
    try:
        (size,) = store.rows("SELECT COALESCE(MAX(position) + 1, 0) FROM ledger_leaves")[0]
        for a in range(0, size, FETCH):
            for row in store.rows(EVENTS_SQL, (a, a + FETCH)):
                len(row[3]) + len(row[5])
        return size
    finally:
        store.close()


def raw_pg_insert(source: str, url: str, schema: str) -> int:
    """The same rows inserted into two plain PostgreSQL tables (no keys, no triggers, no checks)."""
    store = open_store(source)
    location = parse_database_url(url)
    try:
        with psycopg.connect(location.conninfo()) as conn:
            conn.execute(
                f'CREATE TABLE "{schema}".raw_leaves (p bigint, s uuid, v bigint, l bytea)'
            )
            conn.execute(
                f'CREATE TABLE "{schema}".raw_events (s uuid, v bigint, t text, st bytea, p bigint)'
            )
            (size,) = store.rows("SELECT COALESCE(MAX(position) + 1, 0) FROM ledger_leaves")[0]
            with conn.cursor() as cur:
                for a in range(0, size, FETCH):
                    rows = store.rows(EVENTS_SQL, (a, a + FETCH))
                    cur.executemany(
                        f'INSERT INTO "{schema}".raw_leaves VALUES (%s, %s, %s, %s)',
                        [(p, s, v, leaf) for p, s, v, leaf, _, _, _ in rows],
                    )
                    cur.executemany(
                        f'INSERT INTO "{schema}".raw_events VALUES (%s, %s, %s, %s, %s)',
                        [(s, v, t, st, p) for p, s, v, _, t, st, _ in rows],
                    )
            conn.commit()
        return size
    finally:
        store.close()


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    started = time.perf_counter()
    count = fn()
    return time.perf_counter() - started, count


def report(rows: dict[str, list[tuple[float, int]]], baseline: str) -> None:
    base = median([c / s for s, c in rows[baseline]])
    for name, runs in rows.items():
        rate = median([c / s for s, c in runs])
        seconds = median([s for s, _ in runs])
        count = runs[-1][1]
        print(
            f"{name:<58}{count:>9,} ev {seconds:>8.2f} s {rate:>10,.0f} ev/s "
            f"{rate / base:>6.2f}x baseline"
        )


Rows = dict[str, list[tuple[float, int]]]


def sqlite_case(source: StoreConfig, scratch: Path, repeat: int) -> Path:
    """Backup and restore on SQLite; return one backup folder for the PostgreSQL case."""
    rows: Rows = {}
    for i in range(repeat):
        sqlite_round(source, scratch / f"sqlite-{i}", rows)
    print("-- SQLite")
    report(rows, "baseline: sqlite3 backup API (whole file)")
    return scratch / "sqlite-0" / "backup"


def sqlite_round(source: StoreConfig, scratch: Path, rows: Rows) -> None:
    def add(name: str, result: tuple[float, int]) -> None:
        rows.setdefault(name, []).append(result)

    home = copy_home(source.home, scratch / "source")
    add(
        "baseline: sqlite3 backup API (whole file)",
        timed(lambda: _copy_count(home.sqlite_path, scratch / "copy.db")),
    )
    add(
        "baseline: raw read of every event and leaf", timed(lambda: raw_read(str(home.sqlite_path)))
    )
    out = scratch / "backup"
    ledger = Ledger(home)
    try:
        add("chartledger backup (take_backup)", timed(lambda: take_backup(ledger, out).tree_size))
    finally:
        ledger.close()
    key = read_master_key(source.master_key_path)
    add(
        "restore's check of the backup (check_backup)",
        timed(lambda: check_backup(out, key).manifest.tree_size),
    )
    target = StoreConfig(home=scratch / "restored")
    add(
        "chartledger restore into SQLite (restore_backup)",
        timed(lambda: restore_backup(target, out, master_key_file=source.master_key_path).size),
    )


def _copy_count(source: Path, target: Path) -> int:
    sqlite_copy(source, target)
    with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM ledger_leaves").fetchone()
    return int(count)


def postgres_case(folder: Path, master_key: Path, url: str, scratch: Path, repeat: int) -> None:
    rows: Rows = {}
    with schemas(url) as made:
        for i in range(repeat):
            postgres_round(folder, master_key, url, scratch / f"pg-{i}", rows, made)
    print("-- PostgreSQL (restore against the raw insert, backup against the raw read)")
    report(
        {k: v for k, v in rows.items() if "restore" in k or "insert" in k},
        "baseline: raw insert of the rows (no checks)",
    )
    report(
        {k: v for k, v in rows.items() if "backup" in k or "read" in k},
        "baseline: raw read of every event and leaf",
    )


def postgres_round(
    folder: Path, master_key: Path, url: str, scratch: Path, rows: Rows, made: list[str]
) -> None:
    def add(name: str, result: tuple[float, int]) -> None:
        rows.setdefault(name, []).append(result)

    restored, raw = fresh_schema_name("restore"), fresh_schema_name("raw")
    for schema in (restored, raw):
        create_schema(url, schema)
        made.append(schema)
    target = StoreConfig(home=scratch / "home", database_url=with_schema(url, restored))
    location = str(target.database_url)
    add(
        "chartledger restore into PostgreSQL",
        timed(lambda: restore_backup(target, folder, master_key_file=master_key).size),
    )
    add(
        "baseline: raw insert of the rows (no checks)",
        timed(lambda: raw_pg_insert(location, url, raw)),
    )
    add("baseline: raw read of every event and leaf", timed(lambda: raw_read(location)))
    ledger = Ledger(target)
    try:
        add(
            "chartledger backup from PostgreSQL",
            timed(lambda: take_backup(ledger, scratch / "backup").tree_size),
        )
    finally:
        ledger.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the store")
    parser.add_argument("--patients", type=int, default=5000, help="patients the events name")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case, median reported")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args(argv)

    pg_version = None if args.no_postgres else postgres_reachable(args.database_url)
    header("backup and restore throughput", pg_version)
    home = store_home(args.events)
    marker = home / "bench-complete.json"
    if not marker.exists():
        print(f"building {args.events:,} events at {home} ...", flush=True)
        build(home, args.events, args.patients)
    info = json.loads(marker.read_text())
    print(f"store: {info['events']:,} chart events over {info['patients']:,} patients (cached)")
    print(f"timing: {args.repeat} runs per row, median; each run on a fresh copy of the store")
    print("restore rows include the whole check of the backup and the in-transaction store check;")
    print("they leave out the projection rebuild that `chartledger restore` runs afterwards")
    print(flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-backup-", dir=home.parent) as tmp:
        scratch = Path(tmp)
        folder = sqlite_case(StoreConfig(home=home), scratch, args.repeat)
        if pg_version is None:
            print("-- PostgreSQL skipped (unreachable or --no-postgres)")
        else:
            postgres_case(
                folder, home / "keys" / "master.key", args.database_url, scratch, args.repeat
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
