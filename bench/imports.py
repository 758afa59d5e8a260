"""HL7 lab imports of 1,000, 5,000 and 20,000 results in one ORU^R01: time, memory and store
growth, how each scales against the smallest run, and how long another patient's chart takes to
open meanwhile (issue 17).

Each size runs in a fresh child process on a fresh practice (a SQLite file, or a new PostgreSQL
schema), so its memory figure is its own: the import's peak resident memory over what the
process held before it (VmHWM after resetting it, minus VmRSS). The import is
``api.importing.import_labs`` as ``POST /imports/labs`` calls it (on SQLite, from 1,000
results on, it ends by having the views catch up and checkpointing the WAL, ``SETTLE_AFTER``);
the views then catch up as the server's follower would, timed apart (on SQLite nothing is left
to do from 1,000 on).
Store growth, measured after that, is the SQLite file with its WAL and shared memory, or every
table and index of the schema: the views' rows included. The ratios divide each run's cost
per result by the smallest run's: about 1.0 all along is linear (before issue 17, 2,000
results cost four times what 1,000 did, each result storing a copy of the whole message).

A FHIR Bulk Data import (``api.fhir_importing.import_fhir``, as ``chartledger import fhir``
runs it) of ``--fhir-patients`` patients with seven resources each (a Patient, three lab
Observations, a vital sign, a Condition, a MedicationRequest), on a fresh practice per case:
resources per second, the check and the one-transaction write together (0: skip it).

    .venv/bin/python bench/imports.py [--sizes 1000,5000,20000] [--cases sqlite,pg]
                                      [--fhir-patients 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, this file's folder comes first on sys.path and bench/api.py would hide the
# api package: the repository's root first (tests.support too), then this folder for common.
sys.path[0:1] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

import psycopg  # noqa: E402
from common import (  # noqa: E402
    DEFAULT_PG_URL,
    create_schema,
    fresh_schema_name,
    header,
    new_practice,
    postgres_reachable,
    schemas,
    with_schema,
)

from api import importing  # noqa: E402
from api.deps import SerialRunner  # noqa: E402
from domain.patients import Patient  # noqa: E402
from domain.users import User  # noqa: E402
from events.config import StoreConfig, parse_database_url  # noqa: E402
from projections.reads import Reader, open_chart  # noqa: E402
from projections.runner import Runner  # noqa: E402
from tests.support import oru_r01  # noqa: E402  (the tests' message: both import the same)

MB = 2**20


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise LookupError(field)


def _store_size(config: StoreConfig) -> int:
    if not config.database_url:
        return sum(f.stat().st_size for f in config.home.glob("chartledger.sqlite3*"))
    location = parse_database_url(config.database_url)
    with psycopg.connect(location.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (location.schema,),
        ).fetchone()
    return int(row[0]) if row else 0


class Reads(threading.Thread):
    """Another patient's chart opened every 0.1 s while the import runs, as a clinician at the
    front desk would (recorded, caught up, read: ``open_chart`` as ``GET .../chart`` runs it)."""

    def __init__(self, ledger: Any, runner: Runner, reader: Reader, patient_id: Any) -> None:
        super().__init__(daemon=True)
        self.args = (ledger, runner, reader, patient_id)
        self.done = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        while not self.done.wait(0.1):
            started = time.perf_counter()
            open_chart(*self.args)
            self.latencies.append(time.perf_counter() - started)

    def stop(self) -> list[float]:
        self.done.set()
        self.join()
        return self.latencies or [0.0]


def child(results: int, database_url: str | None) -> dict[str, Any]:
    """One import of ``results`` results on a fresh practice; its figures."""
    with tempfile.TemporaryDirectory(prefix="bench-imports-") as home:
        ledger, config = new_practice(Path(home), database_url)
        try:
            runner = SerialRunner(ledger)  # as the server shares it between requests
            patient = Patient.register(
                mrn="BENCH-1", given_name="B", family_name="P",
                birth_date=date(1970, 1, 1), sex="unknown",
            )  # fmt: skip
            clinician = User.register(name="Bench Clinician", role="clinician")
            other = Patient.register(
                mrn="BENCH-2", given_name="O", family_name="P",
                birth_date=date(1970, 1, 1), sex="unknown",
            )  # fmt: skip
            ledger.save(clinician, patient, other)
            runner.catch_up()
            importer = importing.Importer(
                ledger=ledger, runner=runner, by=clinician.id, is_owner=True, acting=nullcontext
            )
            message = oru_r01("BENCH-1", results)
            store_before = _store_size(config)
            Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
            rss_before = _status("VmRSS")
            reads = Reads(ledger, runner, Reader(clinician.id, "TREAT", "bench"), other.id)
            reads.start()
            started = time.perf_counter()
            report = importing.import_labs(importer, message, "bench.hl7")
            took = time.perf_counter() - started
            peak = _status("VmHWM") - rss_before
            latencies = reads.stop()
            started = time.perf_counter()
            runner.catch_up()
            views = time.perf_counter() - started
            assert report.written and len(report.created) == results + 1
            return {
                "results": results,
                "bytes": len(message),
                "seconds": took,
                "views_seconds": views,
                "peak_rss": peak,
                "store": _store_size(config) - store_before,
                "read_median": statistics.median(latencies),
                "read_max": max(latencies),
            }
        finally:
            ledger.close()


def run_child(results: int, database_url: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", str(results)]
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"child for {results} results failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def table(case: str, runs: list[dict[str, Any]]) -> None:
    base = runs[0]
    per = lambda run, key: run[key] / run["results"]  # noqa: E731
    print(f"\n{case}")
    print(
        f"{'results':>8} {'message':>9} {'import s':>9} {'views s':>8} {'peak RSS':>9} "
        f"{'store':>9} {'s/result ratio':>15} {'store/result ratio':>19} "
        f"{'chart read median/max s':>24}"
    )
    for run in runs:
        print(
            f"{run['results']:>8} {run['bytes'] / MB:>7.2f}MB {run['seconds']:>9.2f} "
            f"{run['views_seconds']:>8.2f} {run['peak_rss'] / MB:>7.1f}MB "
            f"{run['store'] / MB:>7.1f}MB {per(run, 'seconds') / per(base, 'seconds'):>15.2f} "
            f"{per(run, 'store') / per(base, 'store'):>19.2f} "
            f"{run['read_median']:>15.3f}/{run['read_max']:.3f}"
        )


def fhir_export(patients: int) -> Any:
    """An export of ``patients`` made-up patients from another system, as NDJSON files."""
    from api.fhir_importing import Export
    from domain.imports.fhir_bulk import SourceFile

    lab = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "laboratory",
            }
        ]
    }
    vital = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
            }
        ]
    }
    files: dict[str, list[str]] = {
        "Patient": [],
        "Observation": [],
        "Condition": [],
        "MedicationRequest": [],
    }
    for n in range(patients):
        ref = {"reference": f"Patient/p{n}"}
        files["Patient"].append(
            json.dumps(
                {
                    "resourceType": "Patient",
                    "id": f"p{n}",
                    "gender": "unknown",
                    "identifier": [{"system": "urn:bench:mrn", "value": f"B{n}"}],
                    "name": [{"family": "Bench", "given": [f"P{n}"]}],
                    "birthDate": "1970-01-01",
                }
            )
        )
        for k, (code, value, unit) in enumerate(
            [
                ("2345-7", "5.20", "mmol/L"),
                ("2160-0", "0.80", "mg/dL"),
                ("6690-2", "7.2", "10*3/uL"),
            ]
        ):
            files["Observation"].append(
                json.dumps(
                    {
                        "resourceType": "Observation",
                        "id": f"o{n}-{k}",
                        "status": "final",
                        "category": [lab],
                        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                        "subject": ref,
                        "effectiveDateTime": "2024-04-01T08:30:00-04:00",
                        "valueQuantity": {"value": value, "unit": unit},
                    }
                ).replace(f'"value": "{value}"', f'"value": {value}')
            )
        files["Observation"].append(
            json.dumps(
                {
                    "resourceType": "Observation",
                    "id": f"v{n}",
                    "status": "final",
                    "category": [vital],
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": ref,
                    "effectiveDateTime": "2024-04-01T08:05:00Z",
                    "valueQuantity": {"value": 72, "unit": "/min"},
                }
            )
        )
        files["Condition"].append(
            json.dumps(
                {
                    "resourceType": "Condition",
                    "id": f"c{n}",
                    "subject": ref,
                    "code": {
                        "coding": [{"system": "http://snomed.info/sct", "code": "38341003"}],
                        "text": "Hypertension",
                    },
                }
            )
        )
        files["MedicationRequest"].append(
            json.dumps(
                {
                    "resourceType": "MedicationRequest",
                    "id": f"m{n}",
                    "status": "active",
                    "intent": "order",
                    "subject": ref,
                    "authoredOn": "2024-04-01",
                    "medicationCodeableConcept": {"text": "Lisinopril 10 MG"},
                    "dosageInstruction": [
                        {"doseAndRate": [{"doseQuantity": {"value": 10, "unit": "mg"}}]}
                    ],
                }
            )
        )
    return Export(
        [SourceFile(f"{k}.ndjson", ("\n".join(v) + "\n").encode()) for k, v in files.items()],
        "https://bench.example.org/fhir",
    )


def fhir_run(patients: int, database_url: str | None) -> dict[str, Any]:
    from api.fhir_importing import import_fhir

    export = fhir_export(patients)
    with tempfile.TemporaryDirectory(prefix="bench-fhir-") as home:
        ledger, _ = new_practice(Path(home), database_url)
        try:
            runner = SerialRunner(ledger)
            owner = User.register(name="Bench Owner", role="owner")
            ledger.save(owner)
            runner.catch_up()
            importer = importing.Importer(
                ledger=ledger, runner=runner, by=owner.id, is_owner=True, acting=nullcontext
            )
            started = time.perf_counter()
            report = import_fhir(importer, export, None, "bench")
            took = time.perf_counter() - started
            assert report.written and report.items == patients * 7
            return {"resources": report.items, "seconds": took}
        finally:
            ledger.close()


def fhir_table(case: str, run: dict[str, Any]) -> None:
    print(f"\n{case}: FHIR import")
    print(f"{'resources':>9} {'import s':>9} {'resources/s':>12}")
    print(
        f"{run['resources']:>9} {run['seconds']:>9.2f} {run['resources'] / run['seconds']:>12.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--cases", default="sqlite,pg")
    parser.add_argument("--database-url", default=DEFAULT_PG_URL)
    parser.add_argument("--fhir-patients", type=int, default=200)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        url = args.database_url if "?schema=" in args.database_url else None
        print(json.dumps(child(args.child, url)))
        return
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cases = args.cases.split(",")
    pg_version = postgres_reachable(args.database_url) if "pg" in cases else None
    header("bench/imports.py: one ORU^R01, N results", pg_version)
    if "sqlite" in cases:
        if sizes:
            table("sqlite", [run_child(n, None) for n in sizes])
        if args.fhir_patients:
            fhir_table("sqlite", fhir_run(args.fhir_patients, None))
    if "pg" in cases:
        if pg_version is None:
            print(f"\npg: skipped, {args.database_url} is unreachable")
            return
        with schemas(args.database_url) as made:
            runs = []
            for n in sizes:
                schema = fresh_schema_name("imports")
                create_schema(args.database_url, schema)
                made.append(schema)
                runs.append(run_child(n, with_schema(args.database_url, schema)))
            fhir = None
            if args.fhir_patients:
                schema = fresh_schema_name("imports")
                create_schema(args.database_url, schema)
                made.append(schema)
                fhir = fhir_run(args.fhir_patients, with_schema(args.database_url, schema))
        if runs:
            table("pg", runs)
        if fhir is not None:
            fhir_table("pg", fhir)


if __name__ == "__main__":
    main()
