"""Projection rebuild throughput: every view dropped and replayed from the log, in events/s,
next to the raw log read rate (the same rows, no decoding) in the same run.

The SQLite practice is built once per event count and cached under bench/out/ (gitignored): a
clinical mix of patients, notes drafted, signed and amended, lab results with conversions,
appointments, and chart reads (each an Access event), 100 events per save.

    python bench/rebuild_views.py                 # 50,000 events; builds the store if not cached
    python bench/rebuild_views.py --events 20000 --rebuild
    python bench/rebuild_views.py --profile       # cProfile one rebuild
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from common import OUT, header, median, new_practice, profile_call

from domain.access import Access
from domain.labs import LabResult
from domain.notes import Note
from domain.patients import Patient
from domain.quantities import Quantity
from events.config import StoreConfig
from events.ledger import Ledger
from projections.rebuild import rebuild, runner_for
from projections.runner import BATCH, read_records

TARGET = 20_000  # events/s for rebuilding every view on SQLite
PER_SAVE = 100
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HL7 = b"MSH|^~\\&|LAB|ACME|CLINIC||20261102083000||ORU^R01|1|P|2.5\rOBX|1|NM|2345-7^Glucose^LN||"


def store_home(events: int) -> Path:
    return OUT / f"projections-{events}"


def build(home: Path, events: int, seed: int = 7) -> None:
    """A clinical log of about ``events`` events."""
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    ledger, _ = new_practice(home)
    rng = random.Random(seed)
    clinicians = [uuid4() for _ in range(20)]
    patients: list[UUID] = []
    notes: list[Note] = []
    written = 3
    try:
        while written < events:
            batch: list[Any] = []
            while len(batch) < PER_SAVE:
                kind = rng.random()
                if kind < 0.1 or not patients:
                    patient = Patient.register(
                        mrn=f"MRN{len(patients):06d}",
                        given_name="Given",
                        family_name="Family",
                        birth_date=AT.date() - timedelta(days=rng.randrange(30_000)),
                        sex="unknown",
                    )
                    patients.append(patient.id)
                    batch.append(patient)
                elif kind < 0.35:
                    note = Note.draft(
                        patient_id=rng.choice(patients),
                        author_id=rng.choice(clinicians),
                        kind="progress",
                        text="Patient seen. " * rng.randrange(1, 20),
                    )
                    note.sign(signed_by=note.author_id, at=AT)
                    if rng.random() < 0.2:
                        note.add_addendum(
                            text="Late entry.", reason="late", author_id=note.author_id, at=AT
                        )
                    notes.append(note)
                    batch.append(note)
                elif kind < 0.6:
                    value = f"{rng.randrange(30, 400)}.{rng.randrange(10)}"
                    lab = LabResult.receive(
                        patient_id=rng.choice(patients),
                        loinc_code="2345-7",
                        test_name="Glucose",
                        quantity=Quantity(value, "mg/dL"),
                        reference_range="70-99",
                        performing_lab="ACME",
                        source_message=HL7 + value.encode() + b"|mg/dL|70-99\r",
                        source_format="HL7v2",
                    )
                    if rng.random() < 0.3:
                        lab.record_conversion("mmol/L")
                    batch.append(lab)
                else:
                    batch.append(
                        Access.record(
                            user_id=rng.choice(clinicians),
                            patient_id=rng.choice(patients),
                            action="access",
                            data_category="chart",
                            purpose_of_use="TREAT",
                            at=AT,
                        )
                    )
            pending = sum(len(a.pending_events) for a in batch)
            ledger.save(*batch)
            written += pending
            print(f"\rbuilding: {written}/{events} events", end="", file=sys.stderr, flush=True)
    finally:
        ledger.close()
    print(file=sys.stderr)


def raw_read(ledger: Ledger) -> int:
    """Every (position, stream, version, topic, state) row in the runner's windows, undecoded."""
    start = 0
    while rows := read_records(ledger.db, start, BATCH):
        start = rows[-1][0] + 1
    return start


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="build the store afresh")
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()

    home = store_home(options.events)
    if options.rebuild or not (home / "practice.json").exists():
        build(home, options.events)
    header("projection rebuild on SQLite")
    ledger = Ledger(StoreConfig(home=home), every_events=10**9, every_seconds=10**9)
    try:
        runner = runner_for(ledger)
        if options.profile:
            profile_call(runner.rebuild)
            return
        reads, rebuilds, singles = [], [], []
        size = 0
        for _ in range(options.repeat):
            seconds, size = timed(raw_read, ledger)
            reads.append(size / seconds)
            seconds, rebuilt = timed(rebuild, ledger)  # what `chartledger projections rebuild` runs
            assert rebuilt == size
            rebuilds.append(size / seconds)
            seconds, rebuilt = timed(rebuild, ledger, (), None, 1)
            assert rebuilt == size
            singles.append(size / seconds)
        views = ", ".join(runner.projections)
        print(f"store:    {home} ({size:,} events)")
        print(f"views:    {views}")
        print(f"raw log read (no decoding)    {median(reads):>10,.0f} events/s")
        print(f"rebuild every view            {median(rebuilds):>10,.0f} events/s")
        print(f"  the same in one process     {median(singles):>10,.0f} events/s")
        ratio = median(rebuilds) / median(reads)
        verdict = "ok" if median(rebuilds) >= TARGET else "BELOW"
        print(f"rebuild / raw read            {ratio:>10.2f}")
        print(f"target: rebuild >= {TARGET:,} events/s: {verdict}")
        print(
            f"(median of {options.repeat}; per run: rebuild {[f'{r:,.0f}' for r in rebuilds]}, "
            f"one process {[f'{r:,.0f}' for r in singles]})"
        )
    finally:
        ledger.close()


if __name__ == "__main__":
    main()
