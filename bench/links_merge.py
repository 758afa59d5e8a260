"""What a merge of the SQLite writer's recent links costs as the links table grows (issue 22).

A raw SQLite file in WAL mode with the ledger's three links tables (events/schema.py), main
filled in bulk with ``--sizes`` links spread at random over 5,000 subjects; then 24 merges of
4,096 positions' links each, timed, either straight into main (``--tiers 2``, the layout before
ledger_links_mid) or into mid with mid settled into main every 65,536 positions (``--tiers 3``,
events/store.py). Prints the mean and the longest merge per size.

    python bench/links_merge.py --tiers 2 --sizes 10000,100000,1000000
    python bench/links_merge.py --tiers 3 --sizes 10000,100000,1000000
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import tempfile
import time
from pathlib import Path

SUBJECTS = 5_000
MERGE_EVERY, SETTLE_EVERY = 4_096, 65_536
MERGES = 24


def table(name: str) -> str:
    return (
        f"CREATE TABLE {name} (subject TEXT NOT NULL, seq INTEGER NOT NULL, "
        "position INTEGER NOT NULL, PRIMARY KEY (subject, seq)) WITHOUT ROWID"
    )


def run(folder: Path, size: int, tiers: int) -> tuple[float, float]:
    conn = sqlite3.connect(folder / f"links-{size}.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(table("main"))
    conn.execute(table("mid"))
    conn.execute("CREATE TABLE recent (subject TEXT, seq INTEGER, position INTEGER)")
    rng = random.Random(1)
    subjects = [f"patient:{rng.getrandbits(128):032x}" for _ in range(SUBJECTS)]
    seqs = [0] * SUBJECTS

    def links(start: int, count: int) -> list[tuple[str, int, int]]:
        made = []
        for position in range(start, start + count):
            i = rng.randrange(SUBJECTS)
            seqs[i] += 1
            made.append((subjects[i], seqs[i], position))
        return made

    conn.execute("BEGIN")
    conn.executemany("INSERT INTO main VALUES (?, ?, ?)", sorted(links(0, size)))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    times, position = [], size
    for _ in range(MERGES):
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO recent VALUES (?, ?, ?)", links(position, MERGE_EVERY))
        conn.execute("COMMIT")
        position += MERGE_EVERY
        began = time.perf_counter()
        conn.execute("BEGIN")
        into = "main" if tiers == 2 else "mid"
        conn.execute(f"INSERT INTO {into} SELECT * FROM recent ORDER BY subject, seq")
        conn.execute("DELETE FROM recent")
        if tiers == 3 and position // SETTLE_EVERY != (position - MERGE_EVERY) // SETTLE_EVERY:
            conn.execute("INSERT INTO main SELECT * FROM mid ORDER BY subject, seq")
            conn.execute("DELETE FROM mid")
        conn.execute("COMMIT")
        times.append(time.perf_counter() - began)
    conn.close()
    return sum(times) / len(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiers", type=int, choices=[2, 3], default=3)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        for size in (int(s) for s in options.sizes.split(",")):
            mean, longest = run(Path(scratch), size, options.tiers)
            print(
                f"{options.tiers} tiers, {size:>10,} links: merge of {MERGE_EVERY:,} positions "
                f"mean {mean * 1000:6.1f} ms, longest {longest * 1000:7.1f} ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
