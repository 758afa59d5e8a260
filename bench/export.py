"""EHI population export throughput on SQLite, in FHIR resources/s, next to a baseline in the
same run: reading and decoding the same log (the runner's read_records + decode_entry, keys
preloaded) without building a resource or writing a file.

The practice is built once per patient count and cached under bench/out/ (gitignored): each
patient has a registration, three lab results (one corrected), a vital sign, a problem, a
medication, an allergy, a signed note with an addendum, an appointment checked in, a secure
message and two chart reads. Each round copies the cached store to a scratch home first, so the
export's own Access events (one per patient) never accumulate between rounds.

    python bench/export.py                    # 1,000 patients (~20,000 events); builds if needed
    python bench/export.py --patients 3000 --rebuild
    python bench/export.py --profile          # cProfile one export
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from common import OUT, header, median, new_practice, profile_call

from domain import appointments as scheduling
from domain.access import Access
from domain.allergies import Allergy
from domain.labs import LabResult
from domain.medications import Medication
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from domain.problems import Problem
from domain.quantities import Quantity
from domain.vitals import VitalSign
from events.config import StoreConfig
from events.ledger import Ledger
from projections.ehi_export import ACCESS_BATCH, ExportRequest, export
from projections.reads import Reader, record_access
from projections.runner import BATCH, KeyRing, decode_entry, log_size, read_records

TARGET = 10_000  # FHIR resources/s for a population export on SQLite
AT = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
HL7 = b"MSH|^~\\&|LAB|ACME|CLINIC||20261102083000||ORU^R01|1|P|2.5\rOBX|1|NM|2345-7^Glucose^LN||"
PATIENTS_PER_SAVE = 10
QUIET = {"every_events": 10**9, "every_seconds": 10**9}


def store_home(patients: int) -> Path:
    return OUT / f"export-{patients}"


def _patient_records(
    rng: random.Random, clinician: UUID, n: int, days: dict[date, Any]
) -> list[Any]:
    patient = Patient.register(
        mrn=f"MRN{n:06d}",
        given_name="Given",
        family_name="Family",
        birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(30_000)),
        sex=rng.choice(("female", "male", "other", "unknown")),
    )
    pid = patient.id
    records: list[Any] = [patient]
    for loinc, name in (("2345-7", "Glucose"), ("2160-0", "Creatinine"), ("2093-3", "Chol")):
        value = f"{rng.randrange(1, 400)}.{rng.randrange(10)}"
        lab = LabResult.receive(
            patient_id=pid,
            loinc_code=loinc,
            test_name=name,
            quantity=Quantity(value, "mg/dL"),
            performing_lab="ACME",
            source_message=HL7 + value.encode() + b"|mg/dL\r",
            source_format="HL7v2",
            reference_low="0.5",
            reference_high="99.5",
            collected_at="20261102083000",
        )
        records.append(lab)
    records[-1].correct(quantity=Quantity("180.0", "mg/dL"), reason="typo", corrects_version=1)
    records.append(
        VitalSign.measure(
            patient_id=pid,
            loinc_code="8310-5",
            name="Body temperature",
            quantity=Quantity("37.0", "Cel"),
            measured_at=AT,
            measured_by=clinician,
        )
    )
    records.append(
        Problem.record(
            patient_id=pid,
            description="Hypertension",
            recorded_by=clinician,
            code_system="SNOMED CT",
            code="38341003",
        )
    )
    records.append(
        Medication.start(
            patient_id=pid,
            drug="Lisinopril",
            dose=Quantity("10", "mg"),
            started_on=date(2026, 1, 5),
            prescriber_id=clinician,
            code_system="RxNorm",
            code="314076",
        )
    )
    records.append(Allergy.record(patient_id=pid, substance="Penicillin", recorded_by=clinician))
    note = Note.draft(patient_id=pid, author_id=clinician, kind="progress", text="Seen. " * 20)
    note.sign(signed_by=clinician, at=AT)
    note.add_addendum(text="Late entry.", reason="late", author_id=clinician, at=AT)
    records.append(note)
    start = datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(minutes=15 * n)
    end = start + timedelta(minutes=15)
    for day in scheduling.days_spanned(start, end):
        if day not in days:
            days[day] = scheduling.ProviderDay.open(provider_id=clinician, day=day)
    touched = [days[d] for d in scheduling.days_spanned(start, end)]
    booked = scheduling.book(touched, patient_id=pid, provider_id=clinician, start=start, end=end,
                             reason="visit")  # fmt: skip
    booked[0].check_in(at=start)
    records.extend(booked)
    thread = Thread.start(kind="secure", topic="Results", patient_ids=[pid], user_ids=[clinician])
    thread.post(sender=f"user:{clinician}", body="Your results are in.", at=AT)
    records.append(thread)
    for _ in range(2):
        records.append(
            Access.record(
                user_id=clinician,
                patient_id=pid,
                action="access",
                data_category="chart",
                purpose_of_use="TREAT",
                at=AT,
            )
        )
    return records


def build(home: Path, patients: int, seed: int = 7) -> None:
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    ledger, _ = new_practice(home)  # checkpoints at the default cadence
    rng = random.Random(seed)
    clinician = uuid4()
    days: dict[date, Any] = {}
    try:
        for first in range(0, patients, PATIENTS_PER_SAVE):
            batch: list[Any] = []
            for n in range(first, min(first + PATIENTS_PER_SAVE, patients)):
                batch.extend(_patient_records(rng, clinician, n, days))
            unique = list({id(r): r for r in batch if r.pending_events}.values())
            ledger.save(*unique)
            done = min(first + PATIENTS_PER_SAVE, patients)
            print(f"\rbuilding: {done}/{patients} patients", end="", file=sys.stderr, flush=True)
    finally:
        ledger.close()
    print(file=sys.stderr)


def scratch_copy(home: Path, into: Path) -> StoreConfig:
    """The cached practice copied (SQLite file, WAL, keys, practice.json) to a scratch home."""
    target = into / "home"
    shutil.copytree(home, target)
    return StoreConfig(home=target)


def decode_all(config: StoreConfig) -> int:
    """The baseline: every event of the log read and opened, as an export reads it."""
    ledger = Ledger(config, **QUIET)
    try:
        keys = KeyRing(ledger.data_keys)
        keys.preload()
        mapper = keys.mapper()
        size, start = log_size(ledger.db), 0
        while start < size:
            rows = read_records(ledger.db, start, min(BATCH, size - start))
            for position, stream, version, topic, state in rows:
                decode_entry(mapper, position, stream, version, topic, bytes(state))
            start = rows[-1][0] + 1
        return size
    finally:
        ledger.close()


def export_all(config: StoreConfig, out: Path) -> tuple[int, int]:
    """(resources written, events read): a population export as ``chartledger export --all``."""
    ledger = Ledger(config, **QUIET)
    try:
        request = ExportRequest(Reader(uuid4(), "HOPERAT"), None, "bench")
        manifest = export(ledger, request, out)
    finally:
        ledger.close()
    ours = manifest["extension"]["https://chartledger.local/fhir/ehi-export"]
    return sum(o["count"] for o in manifest["output"]), ours["logSize"]


def record_exports(config: StoreConfig) -> int:
    """What the export appends before it reads: one export Access event per patient."""
    ledger = Ledger(config, **QUIET)
    try:
        with ledger.db.read() as c:
            c.execute("SELECT subject FROM ledger_links WHERE seq = 1 AND subject LIKE ?",
                      ("patient:%",))  # fmt: skip
            patients = [UUID(row[0].removeprefix("patient:")) for row in c.fetchall()]
        reader = Reader(uuid4(), "HOPERAT")
        for start in range(0, len(patients), ACCESS_BATCH):
            chunk: list[UUID | None] = list(patients[start : start + ACCESS_BATCH])
            record_access(ledger, reader, "export", "chart", chunk, detail={"bench": True})
        return len(patients)
    finally:
        ledger.close()


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    began = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - began, result


def cpu_timed(fn: Any, *args: Any) -> tuple[float, float, Any]:
    """(wall seconds, this process's CPU seconds, result): on a shared machine the CPU time is
    what the work itself cost, the wall time also what other processes took from it."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true", help="build the store afresh")
    parser.add_argument("--profile", action="store_true")
    options = parser.parse_args()

    home = store_home(options.patients)
    if options.rebuild or not (home / "practice.json").exists():
        build(home, options.patients)
    header("EHI population export on SQLite")
    with tempfile.TemporaryDirectory(prefix="bench-export-") as scratch:
        if options.profile:
            config = scratch_copy(home, Path(scratch) / "p")
            profile_call(export_all, config, Path(scratch) / "p" / "out")
            return
        baseline, exports, recording, resources, events = [], [], [], 0, 0
        cpu_baseline, cpu_exports = [], []
        for round_ in range(options.repeat):
            where = Path(scratch) / f"r{round_}"
            config = scratch_copy(home, where)
            seconds, cpu, events = cpu_timed(decode_all, config)
            baseline.append(events / seconds)
            cpu_baseline.append(events / cpu)
            seconds, cpu, (resources, events) = cpu_timed(export_all, config, where / "out")
            exports.append((resources / seconds, events / seconds))
            cpu_exports.append(resources / cpu)
            recording.append(timed(record_exports, config)[0] / seconds)
            shutil.rmtree(where)
        rate = median([r for r, _ in exports])
        event_rate = median([e for _, e in exports])
        print(f"store:    {home} ({options.patients:,} patients, {events:,} events)")
        print(f"export:   {resources:,} FHIR resources + native records of {events:,} events")
        print(f"read + decode the log (baseline)   {median(baseline):>10,.0f} events/s")
        print(f"population export                  {event_rate:>10,.0f} events/s")
        print(f"population export                  {rate:>10,.0f} resources/s")
        print(f"export / baseline (events/s)       {event_rate / median(baseline):>10.2f}")
        print(f"per CPU second (this process): baseline {median(cpu_baseline):,.0f} events/s, "
              f"export {median(cpu_exports):,.0f} resources/s")  # fmt: skip
        share = 100 * median(recording)
        what = f"recording the {options.patients:,} export events"
        print(f"{what:<35}{share:>10.1f} % of the export's time")
        verdict = "ok" if rate >= TARGET else "BELOW"
        print(f"target: export >= {TARGET:,} resources/s: {verdict}")
        print(f"(median of {options.repeat}; per run: {[f'{r:,.0f}' for r, _ in exports]})")


if __name__ == "__main__":
    main()
