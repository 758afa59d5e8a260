"""How each cost grows with the log (issues 20 and 22): one store grown in bulk through 10k, 100k
(and 1M, 10M with ``--max``) events, on SQLite and PostgreSQL, measured at each size:

- ``checkpoint``: the first checkpoint a fresh process signs (one event past the last one);
  this and the next three are the median of 3 fresh processes;
- ``inclusion``: one event's inclusion proof (events/log.inclusion_proof), in that process;
- ``consistency``: the consistency proof a witness holding 2/3 of the log is sent
  (events/tiles.consistency_proof), and the number of tiles it read;
- ``completeness``: one patient's completeness proof (events/log.completeness_proof);
- ``export``: that patient's EHI export (projections/ehi_export.export), its files written;
- ``check``: the store check (verify.store.check_store, workers=1) in a process of its own,
  and its peak memory (ru_maxrss);
- ``append 1`` / ``append 100``: one save of 1 and of 100 events (median of 15).

Times are wall-clock: on a machine shared with other work they carry its noise, so compare a
figure's growth over an order of magnitude, not single milliseconds.

The patient measured is registered first, with 15 records of its own, so its events stay at the
start while the log grows past them: what a proof or an export costs for a patient whose
history is a fixed size, in a log of growing size. The rest of the log is stand-in chart events
over 5,000 patients, 500 per save, checkpoints every 1,000 events as a server signs them.

Prints one table per store with each figure's ratio to the smallest size, and draws the curves
(log-log) into bench/out/scale-<store>.png. Stores are built under bench/out/ (gitignored) or
in a fresh PostgreSQL schema, dropped at the end.

    python bench/scale.py                           # 10k and 100k, SQLite and PostgreSQL
    python bench/scale.py --max 1000000             # and 1M
    python bench/scale.py --stores sqlite --sizes 10000,30000
    python bench/scale.py --stores sqlite --sizes 1000000 --add   # next to the kept figures
"""

from __future__ import annotations

import argparse
import json
import math
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from common import (
    DEFAULT_PG_URL,
    NOTE_TEXT,
    OUT,
    Chart,
    create_schema,
    drop_schema,
    fresh_schema_name,
    header,
    new_practice,
    postgres_reachable,
    subject_pool,
    with_schema,
)

from domain.labs import LabResult
from domain.notes import Note
from domain.patients import Patient
from domain.quantities import Quantity
from events.backup_restore import restore_backup
from events.backup_write import take_backup
from events.config import StoreConfig
from events.ledger import Ledger
from events.log import completeness_proof, inclusion_proof, tree_size
from events.tiles import TileReader, consistency_proof
from legal_hold import holds as lh
from legal_hold.holds import Scope
from legal_hold.production import produce
from projections.audit import audit_report
from projections.ehi_export import ExportRequest, export
from projections.reads import Reader, open_chart
from projections.rebuild import rebuild, runner_for
from verify.store import check_store, open_store

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
PER_SAVE = 500
POOL = 5_000  # stand-in patients the bulk events are spread over (all seen by 10k events)
CHECKPOINT_EVERY = 1_000
QUIET = {"every_events": 10**9, "every_seconds": 10**9}
APPEND_REPEAT = 15
READS_REPEAT = 3  # fresh processes at each size; the median of each figure is shown
HEAVY_EVENTS = 10_000  # the events of the patient whose chart read is measured
AUDIT_WINDOW = 1_000  # events in the "day" the audit query asks for (see child_reads)
METRICS = (  # (key, label, unit)
    ("checkpoint", "first checkpoint, fresh process", "ms"),
    ("inclusion", "one inclusion proof", "ms"),
    ("consistency", "one consistency proof (for a witness)", "ms"),
    ("consistency_tiles", "tiles it read", "tiles"),
    ("completeness", "one patient's completeness proof", "ms"),
    ("export", "one patient's export", "ms"),
    ("check", "store check", "s"),
    ("check_rss", "store check peak memory", "MB"),
    ("check_rate", "store check rate", "ev/s"),
    ("append_1", "append 1 event", "ms"),
    ("append_100", "append 100 events", "ms"),
    ("append_100_mean", "append 100 events, mean over a merge cycle", "ms"),
    ("chart", "chart read, patient with 10,000 events", "ms"),
    ("audit", "audit query of one day (1,000 events)", "ms"),
    ("rebuild", "rebuild of the views", "s"),
    ("rebuild_rss", "rebuild peak memory", "MB"),
    ("backup", "backup", "s"),
    ("backup_rss", "backup peak memory", "MB"),
    ("restore", "restore (its store check included)", "s"),
    ("restore_rss", "restore peak memory", "MB"),
    ("production", "production of 1% of the patients", "s"),
    ("production_rss", "production peak memory", "MB"),
    ("production_events", "events it produced", "events"),
)
# How each figure's growth is named from the fitted exponent b of figure ~ size^b (log-log
# least squares over the sizes measured), the CPU figure where there is one.
FLAT, LOGARITHMIC, LINEAR = 0.1, 0.3, 0.8
FLAT_BYTES = 20


# --- the child processes: fresh, so a cost paid once per process is paid here ----------------


def peak_rss_mb() -> float:
    """The largest resident set of this process and of any worker it waited for (Linux: KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


class Clock:
    """Wall and CPU seconds of each timed step, kept under its name and name + "_cpu". The CPU
    time is this process's (and its waited-for workers'): what the step cost here whatever else
    the machine ran; on PostgreSQL the server's own work is not in it."""

    def __init__(self) -> None:
        self.figures: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), _cpu()
        yield
        self.figures[name] = time.perf_counter() - wall
        self.figures[name + "_cpu"] = _cpu() - cpu


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


def child_reads(
    config: StoreConfig, patient: UUID, heavy: UUID, light: bool = False
) -> dict[str, float]:
    """The reads of one size in a fresh process; ``light`` (past --full-up-to, where the views
    are not rebuilt) leaves out the chart read and the audit query, which read the views."""
    clock = Clock()
    ledger = Ledger(config, **QUIET)
    entries: list[Any] = []
    rows: list[Any] = []
    try:
        if not light:
            entries, rows = _view_reads(ledger, clock, heavy)
        with clock.step("checkpoint"):
            ledger.checkpointer.issue()
        with ledger.db.read() as c:
            size = tree_size(c)
            with clock.step("inclusion"):
                inclusion_proof(c, size // 2, size)
            # What the practice sends a witness that holds the tree of two thirds the size.
            reader = TileReader(c)
            with clock.step("consistency"):
                consistency_proof(reader, 2 * size // 3, size)
            tiles_read = reader.reads
            with clock.step("completeness"):
                proof = completeness_proof(c, f"patient:{patient}", size)
        with tempfile.TemporaryDirectory() as scratch:
            request = ExportRequest(Reader(uuid4(), "HOPERAT"), patient, "bench/scale.py")
            with clock.step("export"):
                export(ledger, request, Path(scratch) / "export")
    finally:
        ledger.close()
    counts = {"consistency_tiles": tiles_read, "patient_events": len(proof.leaves)}
    if not light:
        counts |= {"chart_entries": len(entries), "audit_rows": len(rows)}
    return clock.figures | counts | {"reads_rss": peak_rss_mb()}


def _view_reads(ledger: Ledger, clock: Clock, heavy: UUID) -> tuple[list[Any], list[Any]]:
    """The heavy patient's chart and one day's audit rows, each timed."""
    runner = runner_for(ledger)
    runner.catch_up_to()  # the views were rebuilt before; only the newest events remain
    reader = Reader(uuid4(), "TREAT")
    with clock.step("chart"):
        entries = open_chart(ledger, runner, reader, heavy)
    # "One day": the store is written in bulk within minutes, so a calendar day would hold
    # the whole log; the window is the time the newest AUDIT_WINDOW events span.
    with ledger.db.read() as c:
        c.execute(
            "SELECT event_time FROM audit_events ORDER BY position DESC LIMIT 1 OFFSET ?",
            (AUDIT_WINDOW,),
        )
        (since,) = c.fetchone()
    with clock.step("audit"):
        rows = audit_report(ledger.db, since=since)
    return entries, rows


def child_check(location: str) -> dict[str, float]:
    clock = Clock()
    store = open_store(location)
    try:
        with clock.step("check"):
            # One process: its time, CPU and peak memory are the whole check's (the default
            # spreads it over a worker per core, bench/verify_store.py measures that).
            report = check_store(store, workers=1)
    finally:
        store.close()
    if not report.ok:
        raise SystemExit(f"the store check failed: {report.problems[0].line()}")
    rate = report.events / clock.figures["check"]
    return clock.figures | {"check_rss": peak_rss_mb(), "check_rate": rate}


def child_views(config: StoreConfig) -> dict[str, float]:
    """Every view dropped and replayed (`chartledger projections rebuild`), in a process of
    its own and its workers: their time and the largest peak memory of any of them."""
    clock = Clock()
    ledger = Ledger(config, **QUIET)
    try:
        with clock.step("rebuild"):
            rebuild(ledger)
    finally:
        ledger.close()
    return clock.figures | {"rebuild_rss": peak_rss_mb()}


def child_backup(config: StoreConfig, out: Path) -> dict[str, float]:
    clock = Clock()
    ledger = Ledger(config, **QUIET)
    try:
        with clock.step("backup"):
            take_backup(ledger, out)
    finally:
        ledger.close()
    return clock.figures | {"backup_rss": peak_rss_mb()}


def child_restore(target: StoreConfig, folder: Path, master_key: Path) -> dict[str, float]:
    clock = Clock()
    with clock.step("restore"):
        restore_backup(target, folder, master_key_file=master_key)
    return clock.figures | {"restore_rss": peak_rss_mb()}


def child_production(config: StoreConfig, matter: UUID, risk: UUID, out: Path) -> dict[str, float]:
    clock = Clock()
    ledger = Ledger(config, **QUIET)
    try:
        with clock.step("production"):
            produced = produce(ledger, matter, out, by=risk)
    finally:
        ledger.close()
    return clock.figures | {"production_rss": peak_rss_mb(), "production_events": produced.events}


def in_child(args: list[str]) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"child {args[:2]} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --- building the store in bulk ----------------------------------------------------------------


def tracked_patient(ledger: Ledger) -> UUID:
    """The patient whose proofs and export are measured: registered first, 15 records."""
    patient = Patient.register(
        mrn="SCALE000001",
        given_name="Given",
        family_name="Family",
        birth_date=date(1960, 5, 17),
        sex="female",
    )
    records: list[Any] = [patient]
    clinician = uuid4()
    records += [_lab(patient.id, f"{90 + i}.0") for i in range(10)]
    for _ in range(4):
        note = Note.draft(patient_id=patient.id, author_id=clinician, kind="progress",
                          text=NOTE_TEXT)  # fmt: skip
        note.sign(signed_by=clinician, at=datetime(2026, 11, 2, 9, tzinfo=UTC))
        records.append(note)
    ledger.save(*records)
    return patient.id


def heavy_patient(ledger: Ledger) -> UUID:
    """The patient whose chart read is measured: HEAVY_EVENTS lab results of their own."""
    patient = Patient.register(
        mrn="SCALE000002",
        given_name="Heavy",
        family_name="Family",
        birth_date=date(1950, 1, 2),
        sex="male",
    )
    ledger.save(patient)
    for start in range(0, HEAVY_EVENTS - 1, PER_SAVE):
        ledger.save(
            *(
                _lab(patient.id, f"{70 + i % 50}.0")
                for i in range(start, min(start + PER_SAVE, HEAVY_EVENTS - 1))
            )
        )
    return patient.id


def _lab(patient: UUID, glucose: str) -> LabResult:
    """One glucose result of ``glucose`` mg/dL, as an HL7 import records it."""
    return LabResult.receive(
        patient_id=patient,
        loinc_code="2345-7",
        test_name="Glucose",
        quantity=Quantity(glucose, "mg/dL"),
        performing_lab="ACME",
        source_message=b"MSH|^~\\&|LAB|ACME|CLINIC||20261102083000||ORU^R01|1|P|2.5\r",
        source_format="HL7v2",
        reference_low="70",
        reference_high="99",
        collected_at="20261102083000",
    )


def production_matter(ledger: Ledger, subjects: list[str]) -> tuple[UUID, UUID]:
    """(matter, risk manager): a matter whose hold names 1% of the stand-in patients, so that
    its production holds about 1% of the stand-in events at every size."""
    risk = uuid4()
    at = datetime(2026, 11, 1, tzinfo=UTC)
    matter = lh.open_matter(ledger, name="Scale v. Bench", number="CV-SCALE-1", forum="Court",
                            at=at, by=risk)  # fmt: skip
    patients = [UUID(s.split(":", 1)[1]) for s in subjects[: len(subjects) // 100]]
    scope = Scope.of(patients=patients)
    lh.place_hold(ledger, matter_id=matter.id, name="1%", scope=scope, at=at, by=risk)
    return matter.id, risk


def analyze(ledger: Ledger) -> None:
    """Statistics for PostgreSQL's planner, as autovacuum gathers them after a bulk load on a
    default installation. Without any (these machines run PostgreSQL with autovacuum off),
    the planner guesses each lookup by id matches thousands of rows and scans whole tables: at
    10M events one patient's export read all of stored_events (3.2 s) to find its users."""
    with ledger.db.write(lock=False) as c:
        c.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        for (table,) in c.fetchall():
            c.execute(f'ANALYZE "{table}"')


class Grower:
    """The bulk writer: stand-in chart events over a pool of patients, ``PER_SAVE`` a save."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.rng = random.Random(20)
        self.subjects = subject_pool(POOL, seed=20)

    def events(self, count: int) -> list[Chart]:
        picks = self.rng.sample(range(POOL), count) if count <= POOL else []
        return [Chart(subjects=(self.subjects[i],), text=NOTE_TEXT) for i in picks]

    def grow_to(self, size: int) -> None:
        now = self.size()
        began, reported = time.perf_counter(), now
        while now < size:
            batch = self.events(min(PER_SAVE, size - now))
            self.ledger.save(*batch)
            now += len(batch)
            if now - reported >= 100_000:
                rate = (now - reported) / (time.perf_counter() - began)
                print(f"    {now:,} events ({rate:,.0f} ev/s)", file=sys.stderr, flush=True)
                began, reported = time.perf_counter(), now

    def size(self) -> int:
        with self.ledger.db.read() as c:
            return tree_size(c)

    def append_times(self, count: int, name: str) -> dict[str, float]:
        """Median wall and CPU seconds of one save of ``count`` events (none signs a
        checkpoint: fewer than 1,000 events in all)."""
        runs = []
        for _ in range(APPEND_REPEAT):
            batch = self.events(count)
            clock = Clock()
            with clock.step(name):
                self.ledger.save(*batch)
            runs.append(clock.figures)
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    def append_mean(self, count: int, name: str) -> dict[str, float]:
        """Mean wall and CPU seconds of one save of ``count`` events over a whole cycle of the
        links' merges on SQLite (events/store.LINKS_MERGE_EVERY positions, the append that
        merges included), checkpoints kept off: the cost an append pays on average."""
        self.ledger.checkpointer.every_events = 10**9
        saves = max(1, 4096 // count)
        clock = Clock()
        with clock.step(name):
            for _ in range(saves):
                self.ledger.save(*self.events(count))
        self.ledger.checkpointer.every_events = CHECKPOINT_EVERY
        return {k: v / saves for k, v in clock.figures.items()}


# --- one store through every size ---------------------------------------------------------------


def run_store(
    store: str,
    sizes: list[int],
    database_url: str,
    add: bool = False,
    full_up_to: int | None = None,
) -> dict[int, dict[str, float]]:
    home = OUT / f"scale-{store}"
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    schema = None
    url = None
    if store == "postgres":
        schema = fresh_schema_name("scale")
        create_schema(database_url, schema)
        url = with_schema(database_url, schema)
    try:
        ledger, config = new_practice(home, url, every_events=CHECKPOINT_EVERY, every_seconds=10**9)
        location = url or str(config.sqlite_path)
        results = saved(store) if add else {}
        try:
            patient = tracked_patient(ledger)
            heavy = heavy_patient(ledger)
            grower = Grower(ledger)
            matter, risk = production_matter(ledger, grower.subjects)
            for size in sizes:
                began = time.perf_counter()
                grower.grow_to(size)
                took = time.perf_counter() - began
                print(f"  {store}: {grower.size():,} events, grown in {took:,.0f} s",
                      file=sys.stderr, flush=True)  # fmt: skip
                if store == "postgres":
                    analyze(grower.ledger)
                figures: dict[str, float] = {"size": grower.size()}
                # Appends first, then one more event, so no checkpoint is at the size the
                # fresh process signs.
                figures |= grower.append_times(1, "append_1")
                figures |= grower.append_times(100, "append_100")
                figures |= grower.append_mean(100, "append_100_mean")
                where = ["--home", str(home)] + (["--url", url] if url else [])
                # Past --full-up-to only what issue 22 asks of the largest log is measured:
                # the rebuild of the views (and the chart read and audit query, which need
                # them), the backup, the restore and the production are left out.
                full = full_up_to is None or size <= full_up_to
                if full:
                    figures |= in_child(["--child", "views", *where])
                reads = ["--child", "reads", *where, "--patient", str(patient)]
                reads += ["--heavy", str(heavy)] + ([] if full else ["--light"])
                runs = []
                for _ in range(READS_REPEAT):
                    grower.ledger.save(*grower.events(1))
                    runs.append(in_child(reads))
                figures |= {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                figures |= in_child(["--child", "check", "--location", location])
                if full:
                    figures |= backup_and_restore(store, home, where, database_url)
                if full:
                    figures |= production_figures(where, matter, risk)
                results[size] = figures
                # Kept as each size is done, so a long run stopped early keeps what it measured.
                (OUT / f"scale-{store}.json").write_text(json.dumps(results, indent=1) + "\n")
                print(f"  {store} at {size:,}: {json.dumps(_rounded(figures))}",
                      file=sys.stderr, flush=True)  # fmt: skip
        finally:
            ledger.close()
        return results
    finally:
        if schema is not None:
            drop_schema(database_url, schema)


def production_figures(where: list[str], matter: UUID, risk: UUID) -> dict[str, float]:
    """A production of the matter's 1% in a process of its own; nothing if it fails (the
    size's other figures are kept)."""
    with tempfile.TemporaryDirectory(dir=OUT) as scratch:
        named = ["--matter", str(matter), "--risk", str(risk)]
        out = ["--out", f"{scratch}/bundle"]
        try:
            return in_child(["--child", "production", *where, *named, *out])
        except SystemExit as e:
            print(f"  production failed: {e}", file=sys.stderr, flush=True)
            return {}


def backup_and_restore(
    store: str, home: Path, where: list[str], database_url: str
) -> dict[str, float]:
    """A backup of the store, and its restore into a new SQLite file or PostgreSQL schema, each
    in a process of its own; the copies are removed after."""
    scratch = Path(tempfile.mkdtemp(prefix="scale-backup-", dir=OUT))
    schema = None
    try:
        folder = scratch / "backup"
        figures = in_child(["--child", "backup", *where, "--out", str(folder)])
        target = ["--home", str(scratch / "restored")]
        if store == "postgres":
            schema = fresh_schema_name("scalerestore")
            create_schema(database_url, schema)
            target += ["--url", with_schema(database_url, schema)]
        key = home / "keys" / "master.key"
        figures |= in_child(
            ["--child", "restore", *target, "--out", str(folder), "--key", str(key)]
        )
        return figures
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if schema is not None:
            drop_schema(database_url, schema)


def saved(store: str) -> dict[int, dict[str, float]]:
    """The figures a run kept in bench/out/scale-<store>.json, by size."""
    found = json.loads((OUT / f"scale-{store}.json").read_text())
    return {int(size): figures for size, figures in found.items()}


def _rounded(figures: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in figures.items()}


# --- the table and the curves ---------------------------------------------------------------------


def shown(unit: str, value: float) -> str:
    if unit == "ms":
        return f"{value * 1000:,.1f}"
    if unit == "s":
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def cell(figures: dict[str, float], key: str, unit: str) -> str:
    """The wall-clock figure, and the CPU one in brackets where it was taken."""
    cpu = figures.get(key + "_cpu")
    return shown(unit, figures[key]) + ("" if cpu is None else f" ({shown(unit, cpu)})")


def ratio(results: dict[int, dict[str, float]], key: str, size: int, first: int) -> str:
    if not results[first].get(key):
        return "-"
    found = f"{results[size][key] / results[first][key]:.2f}"
    if results[first].get(key + "_cpu"):
        found += f" ({results[size][key + '_cpu'] / results[first][key + '_cpu']:.2f})"
    return found


def exponent(results: dict[int, dict[str, float]], key: str) -> float | None:
    """b of figure ~ size^b, fitted (least squares on logs) over the sizes measured, from the
    CPU figure where there is one (the wall clock carries the shared machine's load)."""
    sizes = sorted(results)
    cpu = key + "_cpu"
    pick = cpu if all(results[s].get(cpu) for s in sizes) else key
    points = [(math.log(s), math.log(results[s][pick])) for s in sizes if results[s].get(pick)]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    spread = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / spread if spread else None


def growth(b: float | None) -> str:
    """A growth's name from its fitted exponent: flat below FLAT, logarithmic up to
    LOGARITHMIC (log n over 10k..1M fits b of about 0.1-0.2), linear from LINEAR."""
    if b is None:
        return "-"
    if b < FLAT:
        return f"flat (b={b:.2f})"
    if b < LOGARITHMIC:
        return f"logarithmic (b={b:.2f})"
    if b < LINEAR:
        return f"sublinear, n^{b:.2f}"
    return f"linear (b={b:.2f})"


def memory_growth(results: dict[int, dict[str, float]], key: str) -> str:
    """A peak memory's growth as bytes per event between the smallest and largest size: the
    interpreter and libraries take about 85 MB whatever the size, so a fitted exponent would
    call anything flat. Flat below FLAT_BYTES a event (20 MB a million events)."""
    sizes = sorted(results)
    if len(sizes) < 2:
        return "-"
    first, last = results[sizes[0]], results[sizes[-1]]
    per_event = (last[key] - first[key]) * 2**20 / (last["size"] - first["size"])
    if per_event < FLAT_BYTES:
        return f"flat ({per_event:+.0f} B/event)"
    return f"linear in events ({per_event:,.0f} B/event)"


def table(store: str, results: dict[int, dict[str, float]]) -> str:
    """Rows of figures, wall-clock (CPU) per size, each size's ratio to the smallest, and the
    growth named from the fitted exponent."""
    sizes = sorted(results)
    first = sizes[0]
    columns = " | ".join(f"{s:,}" for s in sizes)
    ratios = " | ".join(f"{s:,} / {first:,}" for s in sizes[1:])
    lines = [
        f"| {store} | unit | {columns} | {ratios} | growth |",
        "|---|---|" + "---:|" * (2 * len(sizes) - 1) + "---|",
    ]
    for key, label, unit in METRICS:
        # A figure not taken at every size (saved before it was measured, or a heavy job left
        # out past --full-up-to): its growth over the sizes where it was.
        taken = {s: results[s] for s in sizes if key in results[s]}
        if first not in taken or len(taken) < 2:
            continue
        cells = " | ".join(cell(results[s], key, unit) if s in taken else "-" for s in sizes)
        ratios = " | ".join(ratio(results, key, s, first) if s in taken else "-" for s in sizes[1:])
        named = memory_growth(taken, key) if unit == "MB" else growth(exponent(taken, key))
        lines.append(f"| {label} | {unit} | {cells} | {ratios} | {named} |")
    return "\n".join(lines)


def draw(store: str, results: dict[int, dict[str, float]]) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("matplotlib is needed for the curves: pip install -e '.[bench]'") from None
    sizes = sorted(results)
    figure, axes = plt.subplots(1, 2, figsize=(13, 8))
    # More series than the default cycle's ten colours: twenty colours, and a marker each, so
    # no two curves look alike.
    colours = plt.get_cmap("tab20").colors
    markers = "osD^vP*Xph<>"
    timed = [(key, label) for key, label, unit in METRICS
             if unit in {"ms", "s"} and sum(key in results[s] for s in sizes) >= 2]  # fmt: skip
    for n, (key, label) in enumerate(timed):
        at = [s for s in sizes if key in results[s]]
        line = axes[0].plot(at, [results[s][key] * 1000 for s in at], label=label,
                            color=colours[n % len(colours)],
                            marker=markers[n % len(markers)])[0]  # fmt: skip
        if all(key + "_cpu" in results[s] for s in at):
            axes[0].plot(at, [results[s][key + "_cpu"] * 1000 for s in at],
                         linestyle="--", color=line.get_color())  # fmt: skip
    axes[0].set(xscale="log", yscale="log", xlabel="events in the log", ylabel="ms",
                title=f"{store}: time per call (dashed: CPU time)")  # fmt: skip
    # Below the axes, where it hides no curve.
    axes[0].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    axes[1].plot(sizes, [results[s]["check_rss"] for s in sizes], marker="o",
                 label="store check peak RSS")  # fmt: skip
    axes[1].plot(sizes, [results[s]["reads_rss"] for s in sizes], marker="o",
                 label="fresh process: checkpoint, proofs, export")  # fmt: skip
    for key, label in (("rebuild_rss", "rebuild of the views"), ("backup_rss", "backup"),
                       ("restore_rss", "restore"), ("production_rss", "production")):  # fmt: skip
        at = [s for s in sizes if key in results[s]]
        if len(at) >= 2:
            axes[1].plot(at, [results[s][key] for s in at], marker="o", label=label)
    axes[1].set(xscale="log", xlabel="events in the log", ylabel="MB",
                title=f"{store}: peak memory")  # fmt: skip
    axes[1].set_ylim(bottom=0)
    axes[1].legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    figure.tight_layout()
    path = OUT / f"scale-{store}.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=100_000, help="the largest size measured")
    parser.add_argument("--sizes", help="comma-separated sizes instead of 10k, 100k, 1M, 10M")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL)
    parser.add_argument(
        "--replot", action="store_true", help="table and curves again from bench/out/*.json"
    )
    parser.add_argument(
        "--add",
        action="store_true",
        help="measure --sizes on a new store and add them to the figures kept from a run before",
    )
    parser.add_argument(
        "--full-up-to",
        type=int,
        help="past this size, leave out the rebuild, chart read, audit, backup, restore and "
        "production",
    )
    parser.add_argument(
        "--child",
        choices=["reads", "check", "views", "backup", "restore", "production"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--matter", help=argparse.SUPPRESS)
    parser.add_argument("--risk", help=argparse.SUPPRESS)
    parser.add_argument("--heavy", help=argparse.SUPPRESS)
    parser.add_argument("--light", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--patient", help=argparse.SUPPRESS)
    parser.add_argument("--location", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return child_main(args)
    if args.replot:
        for store in args.stores.split(","):
            results = saved(store)
            print(table(store, results))
            print(f"curves: {draw(store, results)}")
        return 0
    if args.sizes:
        sizes = sorted(int(s) for s in args.sizes.split(","))
    else:
        sizes = [s for s in SIZES if s <= args.max]
    stores = args.stores.split(",")
    pg_version = postgres_reachable(args.database_url) if "postgres" in stores else None
    if "postgres" in stores and pg_version is None:
        raise SystemExit(f"PostgreSQL at {args.database_url} cannot be reached")
    header("scale: how each cost grows with the log", pg_version)
    out = []
    for store in stores:
        results = run_store(store, sizes, args.database_url, args.add, args.full_up_to)
        out.append(table(store, results))
        print(out[-1], flush=True)
        print(f"curves: {draw(store, results)}", flush=True)
    return 0


def child_main(args: argparse.Namespace) -> int:
    work: Callable[[], dict[str, float]]
    config = StoreConfig(home=Path(args.home or "."), database_url=args.url)
    if args.child == "reads":
        patient, heavy = UUID(args.patient), UUID(args.heavy)
        work = lambda: child_reads(config, patient, heavy, args.light)  # noqa: E731
    elif args.child == "views":
        work = lambda: child_views(config)  # noqa: E731
    elif args.child == "backup":
        work = lambda: child_backup(config, Path(args.out))  # noqa: E731
    elif args.child == "production":
        matter, risk, out = UUID(args.matter), UUID(args.risk), Path(args.out)
        work = lambda: child_production(config, matter, risk, out)  # noqa: E731
    elif args.child == "restore":
        work = lambda: child_restore(config, Path(args.out), Path(args.key))  # noqa: E731
    else:
        work = lambda: child_check(args.location)  # noqa: E731
    print(json.dumps(work()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
