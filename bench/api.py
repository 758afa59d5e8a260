"""Requests/s and p50/p95 latency of the API with 16 concurrent clients: chart read and lab
write, on SQLite and (with CHARTLEDGER_BENCH_DATABASE_URL or CHARTLEDGER_TEST_DATABASE_URL)
PostgreSQL. The server runs as `chartledger serve` in its own process. Each client is a clinician
of its own, enrolled with a code and logged in with a TOTP code, and reads the chart of a patient
the owner registered and put in its care (nobody puts themselves in care). Two load
generators: wrk (in C, one connection per client) when it is installed, then the thin client
(api/client.py: httpx and pydantic) in one thread per client of this process, whose own work
competes with the server for the machine's cores. Each line also gives the server process's CPU
time per request.

    .venv/bin/python bench/api.py [--clients 16] [--seconds 10] [--repeat 3] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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
from typing import Any

# Run as a script, this file's folder comes first on sys.path and its name would hide the api
# package: look from the repository's root instead.
sys.path[0] = str(Path(__file__).resolve().parents[1])

import httpx  # noqa: E402
import psycopg  # noqa: E402

from api.auth import from_base32, totp  # noqa: E402
from api.client import Client  # noqa: E402
from api.schemas import LabIn, PatientIn  # noqa: E402

PASSWORD = "bench-password-1"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(
    env: dict[str, str],
    clients: int,
    seconds: float,
    harnesses: list[str],
    repeat: int,
    warmup: float,
) -> dict[tuple[str, str], list[tuple[float, ...]]]:
    chartledger = str(Path(sys.executable).with_name("chartledger"))
    init = subprocess.run(
        [chartledger, "init", "--name", "Bench", "--owner", "owner", "--owner-name", "O"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    found = re.search(r"totp secret:  ([A-Z2-7]+)", init.stdout)
    assert found, "init printed no TOTP secret for the owner"
    owner_secret = from_base32(found.group(1))
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
        # A clinician of its own for each client: a TOTP code logs a user in once, so each
        # session is a different user's, made as the practice makes users (an enrollment code).
        owner = Client(url)
        owner.login("owner", PASSWORD, totp(owner_secret, int(time.time())))
        sessions = []
        for i in range(clients):
            c = Client(url)
            made = owner.create_user(f"bench{i}", f"Dr. Bench {i}", "clinician")
            enrolled = c.enroll(f"bench{i}", made.enrollment_code, PASSWORD)
            assert enrolled.totp_secret is not None
            secret = from_base32(enrolled.totp_secret)
            c.login(f"bench{i}", PASSWORD, totp(secret, int(time.time())))
            p = owner.register_patient(
                PatientIn(
                    mrn=f"B-{i}",
                    given_name="B",
                    family_name=f"P{i}",
                    birth_date=date(1970, 1, 1),
                    sex="unknown",
                )
            )
            owner.assign_care(p.patient_id, c.me().user_id)  # nobody puts themselves in care
            sessions.append((c, p.patient_id))
        results: dict[tuple[str, str], list[tuple[float, ...]]] = {}
        for name, (method, path, body), op in _operations():
            if warmup > 0:  # unmeasured: connections opened, statements prepared, caches filled
                if "wrk" in harnesses and shutil.which("wrk"):
                    _wrk(url, sessions, method, path, body, warmup)
                else:
                    _threads(sessions, op, warmup)
            for _ in range(repeat):
                if "wrk" in harnesses and shutil.which("wrk"):
                    results.setdefault(("wrk", name), []).append(
                        _with_cpu(server.pid, _wrk, url, sessions, method, path, body, seconds)
                    )
                if "thin" in harnesses:
                    results.setdefault(("thin client", name), []).append(
                        _with_cpu(server.pid, _threads, sessions, op, seconds)
                    )
        return results
    finally:
        server.terminate()
        server.wait(10)


LAB = {
    "loinc_code": "2345-7",
    "test_name": "Glucose",
    "value": "5.2",
    "unit": "mg/dL",
    "performing_lab": "Bench",
}


def _operations() -> list[tuple[str, tuple[str, str, dict[str, str] | None], Any]]:
    """(name, (method, path with {patient}, JSON body with patient_id added), thin-client op)."""
    return [
        ("chart read", ("GET", "/patients/{patient}/chart", None), lambda c, p: c.chart(p)),
        (
            "lab write",
            ("POST", "/labs", LAB),
            lambda c, p: c.record_lab(LabIn(patient_id=p, **LAB)),
        ),
    ]


def _with_cpu(pid: int, run: Any, *args: Any) -> tuple[float, ...]:
    """``run(*args)``'s req/s, p50 ms and p95 ms, then the CPU ms per request of the server's
    processes and of PostgreSQL's (0 when it is not running here)."""
    server, postgres = _cpu_seconds(pid), _postgres_cpu_seconds()
    rate, p50, p95, requests = run(*args)
    per_request = 1000 / max(1, requests)
    return (
        rate,
        p50,
        p95,
        (_cpu_seconds(pid) - server) * per_request,
        (_postgres_cpu_seconds() - postgres) * per_request,
    )


def _processes() -> list[tuple[str, str, list[str]]]:
    """(pid, command name, the stat fields after it) of every process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, fields = stat.read_text().rsplit(")", 1)
        except OSError:  # gone meanwhile
            continue
        found.append((stat.parent.name, head.partition("(")[2], fields.split()))
    return found


def _ticks(fields: list[str]) -> int:
    return int(fields[11]) + int(fields[12])  # utime + stime


def _cpu_seconds(pid: int) -> float:
    """CPU time of the server process and of its worker processes."""
    total = sum(
        _ticks(fields)
        for found, _, fields in _processes()
        if found == str(pid) or fields[1] == str(pid)
    )
    return total / os.sysconf("SC_CLK_TCK")


def _postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL process (backends, WAL writer, checkpointer)."""
    total = sum(_ticks(fields) for _, name, fields in _processes() if name.startswith("postgres"))
    return total / os.sysconf("SC_CLK_TCK")


def _threads(sessions: list[tuple[Client, uuid.UUID]], op: Any, seconds: float) -> tuple:
    """Each client a thread of this process, calling the thin client (httpx and pydantic)."""
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def work(c: Client, p: uuid.UUID) -> None:
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
    return len(latencies) / elapsed, q[49] * 1000, q[94] * 1000, len(latencies)


WRK_SCRIPT = """
local tokens = {%(tokens)s}
local paths = {%(paths)s}
local bodies = {%(bodies)s}
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("token", tokens[counter])
  thread:set("path", paths[counter])
  thread:set("body", bodies[counter])
end
function request()
  local headers = {["Authorization"] = token, ["Content-Type"] = "application/json"}
  if body == "" then return wrk.format("%(method)s", path, headers) end
  return wrk.format("%(method)s", path, headers, body)
end
function done(summary, latency, requests)
  local bad = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), bad))
end
"""


def _wrk(
    url: str,
    sessions: list[tuple[Client, uuid.UUID]],
    method: str,
    path: str,
    body: dict[str, str] | None,
    seconds: float,
) -> tuple:
    """Each client one connection of wrk (one thread each), with its own session and patient:
    a load generator in C, so that the clients' own work takes little from the server's two
    cores (the thin-client threads above share one Python process and its lock)."""

    def lua(values: list[str]) -> str:
        return ", ".join(json.dumps(v) for v in values)

    script = WRK_SCRIPT % {
        "tokens": lua([f"Bearer {c.token}" for c, _ in sessions]),
        "paths": lua([path.format(patient=p) for _, p in sessions]),
        "bodies": lua(
            [json.dumps({**body, "patient_id": str(p)}) if body else "" for _, p in sessions]
        ),
        "method": method,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as f:
        f.write(script)
        f.flush()
        clients = str(len(sessions))
        out = subprocess.run(
            ["wrk", "-t", clients, "-c", clients, "-d", f"{max(1, round(seconds))}s",
             "--timeout", "10s", "-s", f.name, url],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("RESULT "))
    requests, micros, p50, p95, bad = (int(v) for v in line.split()[1:])
    if bad:
        raise SystemExit(f"wrk: {bad} of {requests} requests failed ({method} {path})")
    return requests / (micros / 1e6), p50 / 1000, p95 / 1000, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--stores", default="sqlite,postgres", help="which of sqlite,postgres")
    parser.add_argument("--harness", default="wrk,thin", help="which of wrk,thin")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each line; the run of median p95 is shown"
    )
    parser.add_argument(
        "--warmup", type=float, default=3, help="seconds of each operation run unmeasured first"
    )
    options = parser.parse_args()
    wanted, harnesses = options.stores.split(","), options.harness.split(",")
    base = {
        **os.environ,
        "CHARTLEDGER_PBKDF2_ITERATIONS": "1000",
        "CHARTLEDGER_OWNER_PASSWORD": PASSWORD,
    }
    stores: list[tuple[str, str | None]] = [("sqlite", None)] if "sqlite" in wanted else []
    pg = os.environ.get("CHARTLEDGER_BENCH_DATABASE_URL") or os.environ.get(
        "CHARTLEDGER_TEST_DATABASE_URL"
    )
    if pg and "postgres" in wanted:
        stores.append(("postgres", pg))
    print(
        f"{options.clients} concurrent clients, {options.seconds:g} s per operation "
        f"after {options.warmup:g} s of it unmeasured"
    )
    if not shutil.which("wrk"):
        print("(wrk is not installed: the thin-client harness only; apt-get install wrk)")
    print(
        f"{'store':<9} {'clients':<12} {'operation':<11} {'req/s':>8} {'p50 ms':>8} "
        f"{'p95 ms':>8} {'CPU ms/req: server':>18} {'PostgreSQL':>10}"
        + ("   p95 ms of every run" if options.repeat > 1 else "")
    )
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
                results = _run(
                    env, options.clients, options.seconds, harnesses, options.repeat, options.warmup
                )
                for (harness, op), runs in results.items():
                    # One whole run, the one of median p95, so its figures belong together.
                    by_p95 = sorted(runs, key=lambda run: run[2])
                    rate, p50, p95, cpu, pg_cpu = by_p95[(len(runs) - 1) // 2]
                    every = (
                        "  " + ", ".join(f"{run[2]:.1f}" for run in runs) if len(runs) > 1 else ""
                    )
                    print(
                        f"{store:<9} {harness:<12} {op:<11} {rate:>8.0f} {p50:>8.1f} "
                        f"{p95:>8.1f} {cpu:>18.2f} {pg_cpu if url else 0:>10.2f}{every}"
                    )
            finally:
                if schema:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
