"""Append throughput: the full ledger path divided by plain eventsourcing on the same database.

Four cases, {SQLite file, PostgreSQL} x {1 event per transaction, 100 per transaction}. Each case
gets a fresh practice (its own CHARTLEDGER_HOME and, on PostgreSQL, its own schema) and a fresh
plain eventsourcing application (its own SQLite file or schema), both warmed up with one event
per subject of the pool so every subject already has its data key. Then the two sides run the
same picks of subjects in alternating order for a few rounds; each round gives a ratio, and
the median of those is compared with the target.

    python bench/append.py                 # the four cases, ~2-3 minutes
    python bench/append.py --quick         # smaller counts, for a smoke run
    python bench/append.py --cases sqlite-100 --profile   # cProfile the ledger side
    python bench/append.py --breakdown     # also: where each side's time goes, us/event
    python bench/append.py --prefill 100000   # both sides first grown to 100,000 events
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    DEFAULT_PG_URL,
    NOTE_TEXT,
    Chart,
    create_schema,
    fresh_schema_name,
    header,
    median,
    new_practice,
    plain_postgres_app,
    plain_sqlite_app,
    postgres_reachable,
    profile_call,
    schemas,
    subject_pool,
    with_schema,
)

TARGET = 0.75
CASES = ("sqlite-1", "sqlite-100", "pg-1", "pg-100")
WARM_BATCH = 100


class Side:
    """One application with one Chart per subject of the pool, already saved once."""

    def __init__(self, name: str, app: Any, subjects: list[str]) -> None:
        self.name = name
        self.app = app
        self.subjects = [(s,) for s in subjects]
        self.charts: list[Chart] = []
        self.timers: dict[str, float] = defaultdict(float)
        self.written = 0  # bytes this process wrote during run(), from /proc/self/io
        self.events = 0  # events appended by run()
        self.seconds = 0.0  # time spent in run()

    def time_calls(self) -> None:
        """Wrap the stages of each save() on this side's instances with timers (--breakdown)."""
        stages: list[tuple[Any, str, str]] = [
            (self.app.mapper, "to_stored_event", "mapper.to_stored_event"),
            (self.app.recorder, "insert_events", "recorder.insert_events (one transaction)"),
        ]
        if hasattr(self.app, "checkpointer"):
            # Inside insert_events: the checkpoint signed in the append's own transaction.
            stages.append(
                (self.app.checkpointer, "issue_if_due", "  of which checkpointer.issue_if_due")
            )
        for owner, attr, label in stages:
            self.timers[label] = 0.0  # printed in this order, a nested stage under its caller
            setattr(owner, attr, self._timed(getattr(owner, attr), label))

    def _timed(self, fn: Callable[..., Any], label: str) -> Callable[..., Any]:
        timers = self.timers

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                timers[label] += time.perf_counter() - started

        return timed

    def warm_up(self) -> None:
        for start in range(0, len(self.subjects), WARM_BATCH):
            batch = [
                Chart(subjects=s, text=NOTE_TEXT) for s in self.subjects[start : start + WARM_BATCH]
            ]
            self.app.save(*batch)
            self.charts.extend(batch)

    def prefill(self, events: int) -> None:
        """Grow the store by ``events`` events, untimed (100 per save, every chart in turn), so
        the rounds measure appends to a log of that size."""
        done = 0
        while done < events:
            batch = []
            for k in range(min(100, events - done)):
                i = (done + k) % len(self.charts)
                self.charts[i].note(subjects=self.subjects[i], text=NOTE_TEXT)
                batch.append(self.charts[i])
            self.app.save(*batch)
            done += len(batch)

    def run(self, picks: list[list[int]]) -> float:
        """Append one save() per pick (one note per picked chart); return events per second."""
        gc.collect()
        charts, subjects, save = self.charts, self.subjects, self.app.save
        events = 0
        written = _bytes_written()
        started = time.perf_counter()
        for pick in picks:
            batch = []
            for i in pick:
                chart = charts[i]
                chart.note(subjects=subjects[i], text=NOTE_TEXT)
                batch.append(chart)
            save(*batch)
            events += len(batch)
        seconds = time.perf_counter() - started
        self.written += _bytes_written() - written
        self.events += events
        self.seconds += seconds
        return events / seconds

    def breakdown(self) -> list[str]:
        """Lines of microseconds per event by stage, over every run()."""
        us = 1e6 / max(1, self.events)
        lines = [f"{self.name}: {self.seconds * us:6.1f} us/event in all"]
        for label, seconds in self.timers.items():
            lines.append(f"  {label:<46}{seconds * us:6.1f} us/event")
        # A label led by spaces times a stage inside the one above it: not counted twice.
        rest = self.seconds - sum(t for label, t in self.timers.items() if label[0] != " ")
        lines.append(
            f"  {'rest: events, save(), collect_events, loop':<46}{rest * us:6.1f} us/event"
        )
        if self.written:
            per_event = self.written / max(1, self.events)
            label = "written by this process (/proc/self/io)"
            lines.append(f"  {label:<46}{per_event:6,.0f} B/event")
        return lines


def _bytes_written() -> int:
    """Bytes this process has written (SQLite's WAL and database; 0 for PostgreSQL's server)."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Result:
    case: str
    plain: list[float] = field(default_factory=list)
    ledger: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    breakdown: list[str] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """ledger / plain of each round: the two runs of a round are adjacent in time and
        see stores of the same size, so drift of the machine's speed cancels in each."""
        return [q / p for p, q in zip(self.plain, self.ledger, strict=True)]

    @property
    def ratio(self) -> float:
        return median(self.ratios)


def make_picks(rng: random.Random, pool: int, per_tx: int, events: int) -> list[list[int]]:
    return [rng.sample(range(pool), per_tx) for _ in range(max(1, events // per_tx))]


def run_round(
    sides: dict[str, Side], picks: list[list[int]], slices: int, first: int
) -> dict[str, float]:
    """Each side's events/s over one round, its picks cut into slices that the two sides take in
    turn (the side going first alternating): both sides sample the same stretch of time, so a
    change in the machine's speed (or in its disk's fsync latency) lands on both."""
    names = list(sides)
    before = {name: (side.events, side.seconds) for name, side in sides.items()}
    step = -(-len(picks) // slices)
    for j, start in enumerate(range(0, len(picks), step)):
        order = names if (first + j) % 2 == 0 else names[::-1]
        for name in order:
            sides[name].run(picks[start : start + step])
    return {
        name: (side.events - before[name][0]) / (side.seconds - before[name][1])
        for name, side in sides.items()
    }


def run_case(case: str, args: argparse.Namespace, made_schemas: list[str]) -> Result:
    store, per_tx_text = case.split("-")
    per_tx = int(per_tx_text)
    events = args.events_single if per_tx == 1 else args.events_batch
    subjects = subject_pool(args.pool, seed=7)
    result = Result(case)
    with tempfile.TemporaryDirectory(prefix=f"chartledger-bench-{case}-") as tmp:
        root = Path(tmp)
        (root / "plain").mkdir()
        if store == "sqlite":
            plain_app = plain_sqlite_app(root / "plain" / "plain.sqlite3")
            ledger, _ = new_practice(root / "ledger")
        else:
            plain_schema = fresh_schema_name("plain")
            ledger_schema = fresh_schema_name("ledger")
            for schema in (plain_schema, ledger_schema):
                made_schemas.append(schema)
                create_schema(args.database_url, schema)
            plain_app = plain_postgres_app(args.database_url, plain_schema)
            ledger, _ = new_practice(root / "ledger", with_schema(args.database_url, ledger_schema))
        sides = {
            "plain": Side("plain", plain_app, subjects),
            "ledger": Side("ledger", ledger, subjects),
        }
        try:
            for side in sides.values():
                side.warm_up()
                side.prefill(args.prefill)
            if args.profile:
                picks = make_picks(random.Random(1), args.pool, per_tx, events)
                print(f"-- profiling the ledger side of {case}: {events} events, {per_tx}/save")
                rate = profile_call(sides["ledger"].run, picks, top=args.top)
                print(f"(under the profiler: {rate:,.0f} ev/s)")
                return result
            if args.breakdown:
                for side in sides.values():
                    side.time_calls()
            for r in range(args.rounds):
                picks = make_picks(random.Random(1000 + r), args.pool, per_tx, events)
                for name, rate in run_round(sides, picks, args.slices, first=r % 2).items():
                    getattr(result, name).append(rate)
            with ledger.db.read() as c:
                c.execute("SELECT COUNT(*) FROM stored_events")
                (stored,) = c.fetchone() or (0,)
                c.execute("SELECT COUNT(*) FROM ledger_checkpoints")
                (checkpoints,) = c.fetchone() or (0,)
            result.notes.append(f"{stored} events stored, {checkpoints} checkpoints")
            if args.breakdown:
                result.breakdown = [line for side in sides.values() for line in side.breakdown()]
        finally:
            plain_app.close()
            ledger.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # At 100/tx, 6 rounds of 10,000 events take the stores through the same sizes as 3 rounds of
    # 20,000 did, with twice the ratios to take the median of.
    parser.add_argument("--events-single", type=int, default=2000, help="events per round, 1/tx")
    parser.add_argument("--events-batch", type=int, default=10000, help="events per round, 100/tx")
    parser.add_argument("--rounds", type=int, default=6, help="rounds per case")
    parser.add_argument(
        "--slices", type=int, default=10, help="turns each side takes within a round"
    )
    parser.add_argument("--pool", type=int, default=1000, help="patients in the subject pool")
    parser.add_argument("--cases", default=",".join(CASES), help=f"subset of {','.join(CASES)}")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL, help="PostgreSQL database")
    parser.add_argument("--quick", action="store_true", help="200 / 2,000 events per round")
    parser.add_argument(
        "--prefill", type=int, default=0, help="events each side appends, untimed, before timing"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one ledger run per case, no table"
    )
    parser.add_argument("--top", type=int, default=25, help="profile lines to print")
    parser.add_argument(
        "--breakdown", action="store_true", help="time each side's stages (adds ~1 us/call)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events_single, args.events_batch = 200, 2000
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"unknown cases {unknown}: choose from {', '.join(CASES)}")
    if args.pool < 100:
        parser.error("--pool must be at least 100 (a 100-event save names 100 patients)")

    pg_version = None
    if any(c.startswith("pg-") for c in cases):
        pg_version = postgres_reachable(args.database_url)
        if pg_version is None:
            print(f"PostgreSQL unreachable at {args.database_url}: skipping its cases")
            cases = [c for c in cases if not c.startswith("pg-")]
    header("append throughput: full ledger path vs plain eventsourcing", pg_version)
    print(
        f"workload: Chart.note() on a pool of {args.pool} patients; before timing, each side "
        f"appended one event per patient ({WARM_BATCH}/save), so every data key already exists"
        + (f", then {args.prefill:,} more (100/save)" if args.prefill else "")
    )
    print(
        f"          {args.events_single} events per round at 1/tx, {args.events_batch} at 100/tx; "
        f"{args.rounds} rounds, each cut in {args.slices} slices the sides take in turn; "
        "checkpoints at the default cadence"
    )
    print(
        "          plain = eventsourcing.application.Application (JSON transcoder), "
        "same database, same process"
    )
    print(flush=True)

    results = []
    with schemas(args.database_url) as made:
        for case in cases:
            started = time.perf_counter()
            result = run_case(case, args, made)
            if not args.profile:
                rounds = ", ".join(
                    f"{p:,.0f}/{q:,.0f} {ratio:.2f}"
                    for p, q, ratio in zip(result.plain, result.ledger, result.ratios, strict=True)
                )
                print(
                    f"{case:<11} rounds plain/ledger ev/s ratio: {rounds}  "
                    f"({'; '.join(result.notes)}; {time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
            results.append(result)
    if args.profile:
        return 0

    print()
    print("ev/s: median of the rounds; ratio: median of the rounds' ledger/plain (range)")
    print(
        f"{'case':<12}{'plain ev/s':>12}{'ledger ev/s':>13}{'ratio':>8}{'range':>12}{'target':>8}"
    )
    for r in results:
        verdict = "ok" if r.ratio >= TARGET else "BELOW"
        spread = f"{min(r.ratios):.2f}-{max(r.ratios):.2f}"
        print(
            f"{r.case:<12}{median(r.plain):>12,.0f}{median(r.ledger):>13,.0f}"
            f"{r.ratio:>8.2f}{spread:>12}{TARGET:>8.2f}  {verdict}"
        )
    if args.breakdown:
        print("\nwhere the time goes (mean over all rounds, with the timers' own overhead):")
        for r in results:
            print(f"[{r.case}]")
            for line in r.breakdown:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
