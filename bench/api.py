"""Requests/s and p50/p95 latency of the API with 16 concurrent clients: chart read and lab
write, on SQLite and (with CHARTLEDGER_BENCH_DATABASE_URL or CHARTLEDGER_TEST_DATABASE_URL)
PostgreSQL. The server runs as `chartledger serve` in its own process; clients are threads, each
with its own session, each reading the chart of a patient it registered (a care relationship).

    .venv/bin/python bench/api.py [--clients 16] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import date
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the api
# package: look from the repository's root instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
import psycopg  # noqa: E402

from api.client import Client  # noqa: E402
from api.schemas import LabIn, PatientIn  # noqa: E402

PASSWORD = "bench-password-1"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str], clients: int, seconds: float) -> dict[str, tuple[float, ...]]:
    chartledger = str(Path(sys.executable).with_name("chartledger"))
    subprocess.run(
        [chartledger, "init", "--name", "Bench", "--owner", "owner", "--owner-name", "O"],
        env=env,
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    subprocess.run(
        [chartledger, "demo", "--patients", str(clients)], env=env, check=True, capture_output=True
    )
    port = _port()
    server = subprocess.Popen(
        [chartledger, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/health")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        sessions = []
        for i in range(clients):
            c = Client(url)
            c.login("dr.ames", "demo-clinician-1")
            p = c.register_patient(
                PatientIn(
                    mrn=f"B-{i}",
                    given_name="B",
                    family_name=f"P{i}",
                    birth_date=date(1970, 1, 1),
                    sex="unknown",
                )
            )
            sessions.append((c, p.patient_id))
        results = {}
        for name, op in (
            ("chart read", lambda c, p: c.chart(p)),
            (
                "lab write",
                lambda c, p: c.record_lab(
                    LabIn(
                        patient_id=p,
                        loinc_code="2345-7",
                        test_name="Glucose",
                        value="5.2",
                        unit="mg/dL",
                        performing_lab="Bench",
                    )
                ),
            ),
        ):
            latencies: list[float] = []
            lock = threading.Lock()
            stop = time.perf_counter() + seconds

            def work(
                c: Client, p: uuid.UUID, op=op, stop=stop, lock=lock, latencies=latencies
            ) -> None:
                mine = []
                while time.perf_counter() < stop:
                    t = time.perf_counter()
                    op(c, p)
                    mine.append(time.perf_counter() - t)
                with lock:
                    latencies.extend(mine)

            started = time.perf_counter()
            threads = [threading.Thread(target=work, args=s) for s in sessions]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - started
            q = statistics.quantiles(latencies, n=100)
            results[name] = (len(latencies) / elapsed, q[49] * 1000, q[94] * 1000)
        return results
    finally:
        server.terminate()
        server.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    options = parser.parse_args()
    base = {
        **os.environ,
        "CHARTLEDGER_PBKDF2_ITERATIONS": "1000",
        "CHARTLEDGER_OWNER_PASSWORD": PASSWORD,
    }
    stores = [("sqlite", None)]
    pg = os.environ.get("CHARTLEDGER_BENCH_DATABASE_URL") or os.environ.get(
        "CHARTLEDGER_TEST_DATABASE_URL"
    )
    if pg:
        stores.append(("postgres", pg))
    print(f"{options.clients} concurrent clients, {options.seconds:g} s per operation")
    print(f"{'store':<9} {'operation':<11} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}")
    for store, url in stores:
        with tempfile.TemporaryDirectory() as home:
            env = {**base, "CHARTLEDGER_HOME": home}
            env.pop("CHARTLEDGER_DATABASE_URL", None)
            schema = None
            if url:
                schema = "bench_" + uuid.uuid4().hex[:12]
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f'CREATE SCHEMA "{schema}"')
                env["CHARTLEDGER_DATABASE_URL"] = f"{url}?schema={schema}"
            try:
                for op, (rate, p50, p95) in _run(env, options.clients, options.seconds).items():
                    print(f"{store:<9} {op:<11} {rate:>8.0f} {p50:>8.1f} {p95:>8.1f}")
            finally:
                if schema:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
