"""One HL7 ORU^R01 of 20,000 OBX segments posted to a real `chartledger serve` (two workers), on
SQLite and on PostgreSQL (issue 17): it is accepted and imported within 30 s, the workers' memory
grows by less than 200 MB, the store by less than 50 MB (views and SQLite's WAL included), and a
clinician reading another chart every 0.1 s meanwhile is answered within a second nine times in
ten and within three seconds always. Before, the same message got no answer in 120 s while the
worker reached 15.7 GB and the WAL 15.3 GB.

It takes 20 to 45 s a store on two busy cores: the issue's own message, imported for real."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from api import auth
from api.client import Client
from api.demo import demo_totp_secret
from api.schemas import PatientIn
from events.config import StoreConfig, parse_database_url
from tests.e2e.conftest import CHARTLEDGER, served
from tests.support import oru_r01

RESULTS = 20_000
MB = 2**20
# Issue 17's 50 MB, on both stores: about 46 MB measured on SQLite, 48 MB on PostgreSQL (58 MB
# before its lab events fitted seven to an 8 KB page, audit rows named their one patient
# themselves and chart rows deflated against their own ids; bench/README.md has the tables).
# Plus the stored Merkle tree (issue 22, LEDGER_FORMAT.md §12): 32 bytes a leaf, and on
# PostgreSQL the copies of the newest partial tile each import transaction rewrote, until vacuum
# takes them (2.4 MB measured here), and the import's job row (0.8 MB with its indexes).
STORE_BOUND = 54 * MB


@pytest.fixture
def server(store_config: StoreConfig) -> Iterator[str]:
    env = {**os.environ, "CHARTLEDGER_HOME": str(store_config.home)}
    env["CHARTLEDGER_PBKDF2_ITERATIONS"] = "1000"
    env.pop("CHARTLEDGER_DATABASE_URL", None)
    if store_config.database_url:
        env["CHARTLEDGER_DATABASE_URL"] = store_config.database_url
    for command in (["init", "--name", "Bulk"], ["demo", "--patients", "2"]):
        done = subprocess.run(
            CHARTLEDGER + command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, done.stderr
    with served(env) as url:
        yield url


def logged_in(url: str, username: str, password: str) -> Client:
    client = Client(url, timeout=120.0)
    client.login(username, password, auth.totp(demo_totp_secret(username), int(time.time())))
    return client


def in_care(desk: Client, clinician: Client, mrn: str) -> UUID:
    """A patient the demo's front desk registers and puts in the clinician's care."""
    body = PatientIn(
        mrn=mrn, given_name="B", family_name="P", birth_date=date(1970, 1, 1), sex="unknown"
    )
    patient = desk.register_patient(body).patient_id
    desk.assign_care(patient, clinician.me().user_id)
    return patient


def workers_rss(url: str) -> int:
    """The resident memory of the server's worker processes, in bytes (from /proc)."""
    port = url.rsplit(":", 1)[1]
    parents = [p for p in _pids() if f"--port\0{port}\0" in _read(p, "cmdline")]
    assert len(parents) == 1, parents
    workers = [p for p in _pids() if _status(p, "PPid") == parents[0]]
    # A worker the server is replacing just then has no VmRSS (or no /proc entry) left.
    sizes = [rss.split()[0] for p in workers if (rss := _status(p, "VmRSS"))]
    assert sizes, workers
    return sum(int(size) * 1024 for size in sizes)


def _pids() -> list[str]:
    return [p for p in os.listdir("/proc") if p.isdigit()]


def _read(pid: str, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text()
    except OSError:  # gone meanwhile
        return ""


def _status(pid: str, field: str) -> str:
    for line in _read(pid, "status").splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def store_sizes(config: StoreConfig) -> dict[str, int]:
    """Bytes the store takes, by where: the SQLite file, its WAL and shared memory; or every
    table of the PostgreSQL schema with its indexes and TOAST (none left out)."""
    if not config.database_url:
        return {f.name: f.stat().st_size for f in config.home.glob("chartledger.sqlite3*")}
    location = parse_database_url(config.database_url)
    with psycopg.connect(location.conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'm')",
            (location.schema,),
        ).fetchall()
    return {name: int(size) for name, size in rows}


def growth(before: dict[str, int], after: dict[str, int]) -> str:
    """What grew, largest first, in MB: for the figures and the failure message."""
    grown = {k: v - before.get(k, 0) for k, v in after.items()}
    return ", ".join(f"{k} +{v / MB:.1f}" for k, v in sorted(grown.items(), key=lambda kv: -kv[1]))


def test_20000_results_import_quickly_in_bounded_memory_while_charts_stay_readable(
    server: str, store_config: StoreConfig
) -> None:
    clinician = logged_in(server, "dr.ames", "demo-clinician-1")
    desk = logged_in(server, "frontdesk", "demo-frontdesk-1")
    bulk, other = (in_care(desk, clinician, mrn) for mrn in ("BULK-1", "OTHER-1"))
    message = oru_r01("BULK-1", RESULTS)
    assert 700_000 < len(message) < 2**20  # as in issue 17: under the default body limit
    # The same clinician's session on a connection of its own (a TOTP code logs in once).
    reader = Client(server, token=clinician.token)
    reader.chart(other)  # the reader's first read (its session's setup) is not timed
    rss_before, store_before = workers_rss(server), store_sizes(store_config)

    reads: list[float] = []
    wrong: list[object] = []
    rss_peak = [rss_before]
    importing = threading.Event()
    importing.set()

    def read_charts() -> None:
        while importing.is_set():
            started = time.monotonic()
            try:
                answer = reader.chart(other)
            except Exception as e:  # any refusal or error fails the test below
                wrong.append(e)
                return
            reads.append(time.monotonic() - started)
            if answer.patient_id != other:
                wrong.append(answer)
            rss_peak.append(workers_rss(server))
            time.sleep(0.1)

    thread = threading.Thread(target=read_charts)
    thread.start()
    try:
        started = time.monotonic()
        report = clinician.import_labs(message, source_name="bulk.hl7")
        took = time.monotonic() - started
    finally:
        importing.clear()
        thread.join(30)
    reads.sort()
    ninetieth = reads[int(len(reads) * 0.9)] if reads else 0.0
    print(  # the figures, for the record (pytest -s)
        f"import {took:.1f} s, workers +{(max(rss_peak) - rss_before) / MB:.0f} MB; "
        f"{len(reads)} chart reads: median "
        f"{reads[len(reads) // 2] if reads else 0:.2f} s, 90% {ninetieth:.2f} s, "
        f"slowest {max(reads, default=0):.2f} s"
    )

    assert (report.written, report.accepted, report.items) == (True, 1, 1)
    assert len(report.created) == RESULTS + 1  # the message's Document, then its results
    assert took < 30, f"the import took {took:.1f} s"
    assert max(rss_peak) - rss_before < 200 * MB, f"workers grew {max(rss_peak) - rss_before} B"
    assert wrong == [] and len(reads) >= 3, (wrong, reads)  # it read all through the import
    # Nine reads in ten within the second asked for; the slowest within three, a generous bound
    # for two cores shared by the whole suite (a read waits for one batch of results to commit,
    # and for the views to take in what was committed before it asked).
    assert ninetieth < 1.0, f"chart reads while importing: {reads}"
    assert reads[-1] < 3.0, f"chart reads while importing: {reads}"
    labs = [e for e in clinician.chart(bulk).entries if e.kind == "LabResult"]
    assert len(labs) == RESULTS
    assert {e.state["source_document_id"] for e in labs} == {str(report.created[0])}
    # The store as the import left it, the views' rows included (the read above has them caught
    # up), and SQLite's WAL with it. Each result is its own event (about 1.1 KB sealed with its
    # actor and session, 1.4 KB stored with its leaf and links), a chart row (its state deflated,
    # projections/state_codec.py) and an audit row. Before, it grew 760 KB a result (a copy of
    # the message each), 15 GB here.
    after = store_sizes(store_config)
    grown = sum(after.values()) - sum(store_before.values())
    print(f"store +{grown / MB:.1f} MB: {growth(store_before, after)}")
    assert grown < STORE_BOUND, f"the store grew {grown / MB:.1f} MB: {growth(store_before, after)}"
