"""E-discovery bundles: producing and verifying a bundle of every event of a 100,000-event log,
next to baselines in the same process (reading the same rows raw; zipping the same bytes).

The SQLite store is bench/verify_store.py's (100 Chart events per save over ~5,000 patients,
cached under bench/out/); each run works on a scratch copy of it, so the cache stays as built. A
practice-wide hold puts every patient, and so every event, in scope.

    python bench/bundle.py                # 100,000 events; builds the store if not cached
    python bench/bundle.py --events 5000  # a quick run
    python bench/bundle.py --profile      # cProfile one production and one verification
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from common import OUT, header, profile_call
from verify_store import FETCH, RAW_SQL, build, store_home

from events.config import StoreConfig
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.holds import Scope
from legal_hold.production import produce
from verify.bundle import check_bundle

TARGET_PRODUCE, TARGET_VERIFY = 60.0, 10.0  # seconds, for 100,000 events (issues #6, #16)


def raw_read(path: Path) -> int:
    """Every leaf's row (position, leaf, state) in position windows, unchecked: the floor."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    try:
        (size,) = conn.execute(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM ledger_leaves"
        ).fetchone()
        for start in range(0, size, FETCH):
            conn.execute(RAW_SQL, (start, start + FETCH)).fetchall()
        return int(size)
    finally:
        conn.close()


def rezip(bundle: Path, target: Path) -> int:
    """Copy every entry's bytes into a new STORED ZIP: the floor of writing the same file."""
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            out.writestr(info.filename, source.read(info))
    return target.stat().st_size


def load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events in the store")
    parser.add_argument("--patients", type=int, default=5000, help="patients the events name")
    parser.add_argument("--profile", action="store_true", help="cProfile, no table")
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    args = parser.parse_args(argv)

    header("e-discovery bundle: produce and verify (SQLite)")
    home = store_home(args.events)
    if not (home / "bench-complete.json").exists():
        print(f"building {args.events:,} events at {home} ...", flush=True)
        build(home, args.events, args.patients)
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bundle-", dir=OUT) as scratch_dir:
        scratch = Path(scratch_dir)
        shutil.copytree(home, scratch / "home")
        config = StoreConfig(home=scratch / "home")
        ledger = Ledger(config)
        try:
            return run(ledger, config, scratch, args)
        finally:
            ledger.close()


def run(ledger: Ledger, config: StoreConfig, scratch: Path, args: argparse.Namespace) -> int:
    risk, at = uuid4(), datetime.now(UTC)
    matter = lh.open_matter(
        ledger, name="Bench v. Practice", number="B-1", forum=None, at=at, by=risk
    )
    lh.place_hold(
        ledger, matter_id=matter.id, name="all", scope=Scope.of(all_patients=True), at=at, by=risk
    )
    out = scratch / "bundle.zip"
    print(f"load before: {load()}", flush=True)
    if args.profile:
        profile_call(lambda: produce(ledger, matter.id, out, by=risk), top=args.top)
        profile_call(lambda: check_bundle(out), top=args.top)
        return 0

    started = time.perf_counter()
    rows = raw_read(config.sqlite_path)
    read_seconds = time.perf_counter() - started

    started = time.perf_counter()
    produced = produce(ledger, matter.id, out, by=risk)
    produce_seconds = time.perf_counter() - started

    started = time.perf_counter()
    report = check_bundle(out, workers=os.cpu_count() or 1)
    verify_seconds = time.perf_counter() - started
    if not report.ok:
        print(f"verification FAILED: {report.failures[0]}")
        return 1

    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    command = [sys.executable, "-m", "verify", "bundle", str(out)]
    cli = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cli_seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of the verifier and its workers: what the load of other work cannot inflate.
    cli_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if cli.returncode != 0:
        print(f"python -m verify bundle exited {cli.returncode}")
        return 1

    started = time.perf_counter()
    rezip(out, scratch / "rezipped.zip")
    zip_seconds = time.perf_counter() - started
    print(f"load after:  {load()}")
    print()
    size_mb = produced.size / 1e6
    print(
        f"bundle: {produced.events:,} events of {len(produced.subjects):,} subjects, "
        f"{size_mb:,.0f} MB, checkpoint size {produced.checkpoint_size:,}; "
        f"{len(report.lines):,} items checked, all OK"
    )
    table = [
        ("baseline: raw read of every row (position, leaf, state)", read_seconds, rows),
        ("baseline: re-zip the bundle's entries (read + STORED write)", zip_seconds, 0),
        ("produce (disclosures, checkpoint, gather, natives, review files, zip, event)",
         produce_seconds, produced.events),
        (f"verify (check_bundle: every item, {os.cpu_count()} workers)", verify_seconds,
         produced.events),
        ("verify (python -m verify bundle in a new process, output discarded)", cli_seconds,
         produced.events),
    ]  # fmt: skip
    for name, seconds, count in table:
        rate = f"{count / seconds:>10,.0f} ev/s" if count else ""
        print(f"{name:<80}{seconds:>8.2f} s {rate}")
    print(
        f"produce / raw read: {produce_seconds / read_seconds:.1f}x; "
        f"verify / re-zip: {verify_seconds / zip_seconds:.1f}x; "
        f"python -m verify bundle used {cli_cpu:.2f} CPU seconds (itself and its workers)"
    )
    scale = 100_000 / max(produced.events, 1)
    print(
        f"targets for 100,000 events: produce < {TARGET_PRODUCE:.0f} s "
        f"({'met' if produce_seconds * scale < TARGET_PRODUCE else 'MISSED'}: "
        f"{produce_seconds * scale:.1f} s scaled), verify < {TARGET_VERIFY:.0f} s "
        f"({'met' if cli_seconds * scale < TARGET_VERIFY else 'MISSED'}: "
        f"{cli_seconds * scale:.1f} s scaled, python -m verify bundle)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
