"""Concurrent writers keep one gapless log and one unbroken chain per subject; a writer killed
mid-append leaves a store that still verifies and accepts more appends. On both stores."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from api.cli import main as chartledger
from events import store
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from tests.conftest import pg_connect
from tests.support import Chart, init_practice, patient, user
from verify.__main__ import main as verify_main
from verify.records import parse_leaf

WRITERS = 8
SAVES_PER_WRITER = 20  # 25 events each: every fourth save appends two at once
REPO = Path(__file__).resolve().parents[2]


@contextmanager
def raw(config: StoreConfig) -> Iterator[Any]:
    """A plain connection to the store's tables (no placeholders needed here)."""
    if config.database_url is None:
        conn: Any = sqlite3.connect(config.sqlite_path, isolation_level=None, timeout=30)
    else:
        conn = pg_connect(config.database_url)
        conn.execute(f'SET search_path TO "{parse_database_url(config.database_url).schema}"')
    try:
        yield conn
    finally:
        conn.close()


def rows(config: StoreConfig, sql: str) -> list[tuple[Any, ...]]:
    with raw(config) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def verdicts(config: StoreConfig, capsys: pytest.CaptureFixture[str]) -> list[tuple[int, str]]:
    """(exit status, output) of `python -m verify store`, then of `chartledger verify`.

    The keyless verifier runs first, on the store exactly as the writers left it.
    """
    where = ["--sqlite", str(config.sqlite_path)]
    if config.database_url is not None:
        where = ["--database-url", config.database_url]
    capsys.readouterr()
    keyless = verify_main(["store", *where])
    keyless_out = capsys.readouterr().out
    with_keys = chartledger(["verify"])
    return [(keyless, keyless_out), (with_keys, capsys.readouterr().out)]


def assert_verifies(config: StoreConfig, capsys: pytest.CaptureFixture[str], size: int) -> None:
    for code, out in verdicts(config, capsys):
        assert code == 0, out
        assert f": {size} leaves, {size} events, " in out, out


def assert_one_log_and_unbroken_chains(config: StoreConfig, expected: Counter[str]) -> int:
    """Positions 0 … N−1, one event per leaf, and each subject's links walk seq 1 … k with
    every prev pointing at the subject's previous leaf; returns N."""
    leaves = rows(config, "SELECT position, leaf FROM ledger_leaves ORDER BY position")
    size = len(leaves)
    assert [p for p, _ in leaves] == list(range(size))
    events = rows(config, "SELECT position FROM stored_events ORDER BY position")
    assert [p for (p,) in events] == list(range(size))
    heads: dict[str, tuple[int, int]] = {}
    carried = set()
    for position, leaf in leaves:
        for subject, seq, prev in parse_leaf(bytes(leaf)).links:
            last_seq, last_position = heads.get(subject, (0, None))
            assert (seq, prev) == (last_seq + 1, last_position), (position, subject)
            heads[subject] = (seq, position)
            carried.add((subject, seq, position))
    indexed = rows(config, "SELECT subject, seq, position FROM ledger_links")
    assert len(indexed) == len(carried) and set(indexed) == carried
    assert {s: seq for s, (seq, _) in heads.items()} == dict(expected)
    return size


def overlapping_saves(writers: list[Writer]) -> int:
    """How many pairs of saves by different writers were in progress at the same moment."""
    spans = sorted((start, end, i) for i, w in enumerate(writers) for start, end in w.saving)
    overlaps = 0
    for n, (_, end, i) in enumerate(spans):
        for start, _, j in spans[n + 1 :]:
            if start >= end:
                break
            overlaps += i != j
    return overlaps


class Writer:
    """One writer's share: its own patient, two subjects every writer shares, and the counts of
    what it appended for each subject."""

    def __init__(self, shared: tuple[str, str]) -> None:
        self.own = patient()
        self.shared = shared
        self.counts: Counter[str] = Counter()
        self.events = 0
        self.saving: list[tuple[float, float]] = []  # (start, end) of each save

    def run(self, ledger: Ledger, start: threading.Barrier) -> None:
        plan = [
            (Chart(subjects=(self.own,), text="opened"), (self.own,)),
            (Chart(subjects=(self.shared[0],), text="opened"), (self.shared[0],)),
            (Chart(subjects=(self.own, self.shared[1]), text="opened"), (self.own, self.shared[1])),
        ]
        plan.append(plan[0])
        start.wait()
        for n in range(SAVES_PER_WRITER):
            chart, subjects = plan[n % 4]
            if n >= 3:  # the first three saves carry the charts' Opened events
                chart.note(subjects=subjects, text=str(n))
            if n % 4 == 3:
                chart.note(subjects=subjects, text=f"{n}b")  # two events in one save
            for event in chart.pending_events:
                self.counts.update(event.subjects)
                self.events += 1
            began = time.perf_counter()
            ledger.save(chart)
            self.saving.append((began, time.perf_counter()))


@pytest.mark.parametrize("sharing", ["own ledgers", "one shared ledger"])
def test_concurrent_writers_keep_one_gapless_log_and_one_chain_per_subject(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    sharing: str,
) -> None:
    init_practice(store_config, monkeypatch)
    # Links merged into main every few positions too, so writers whose head caches another
    # writer has outdated read heads from both tables.
    monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 5)
    shared = (patient(), user())
    writers = [Writer(shared) for _ in range(WRITERS)]
    # Checkpoints every few events, so writers also race to sign them.
    if sharing == "own ledgers":
        ledgers = [Ledger(store_config, every_events=7) for _ in writers]
    else:
        ledgers = [Ledger(store_config, every_events=7)] * WRITERS
    start = threading.Barrier(WRITERS, timeout=60)
    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            done = [pool.submit(w.run, lg, start) for w, lg in zip(writers, ledgers, strict=True)]
            for future in done:
                future.result()
    finally:
        for ledger in set(ledgers):
            ledger.close()

    expected: Counter[str] = Counter()
    for w in writers:
        expected.update(w.counts)
    total = 1 + sum(w.events for w in writers)  # and the practice's Created event
    assert sum(w.events for w in writers) == WRITERS * 25
    assert expected[shared[0]] == WRITERS * 5 and expected[shared[1]] == WRITERS * 5
    assert assert_one_log_and_unbroken_chains(store_config, expected) == total
    # The writers really raced: saves of different writers were in flight at the same time.
    assert overlapping_saves(writers) > 0
    checkpoints = rows(store_config, "SELECT COUNT(*) FROM ledger_checkpoints")[0][0]
    assert checkpoints > 1
    assert_verifies(store_config, capsys, total)


def test_a_writer_killed_mid_append_leaves_a_store_that_verifies_and_takes_more_appends(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init_practice(store_config, monkeypatch)
    for _ in range(KILLS):  # each kill lands wherever the writer happens to be
        before = leaf_count(store_config)
        kill_writer_after(store_config, before + 40)
        size = leaf_count(store_config)
        assert size >= before + 40
        # The keyless verifier first, on the store exactly as the killed writer left it.
        assert_verifies(store_config, capsys, size)

    ledger = Ledger(store_config, every_seconds=10**9)
    try:
        ledger.save(Chart(subjects=(patient(),), text="after the crash"))
        ledger.checkpointer.issue()
    finally:
        ledger.close()
    assert leaf_count(store_config) == size + 1
    assert_verifies(store_config, capsys, size + 1)


KILLS = 3


def kill_writer_after(config: StoreConfig, leaves: int) -> None:
    """Start tests/integration/append_forever.py; SIGKILL it once the log has ``leaves``."""
    env = {k: v for k, v in os.environ.items() if k != "CHARTLEDGER_DATABASE_URL"}
    env["CHARTLEDGER_HOME"] = str(config.home)
    if config.database_url is not None:
        env["CHARTLEDGER_DATABASE_URL"] = config.database_url
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.append_forever"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while leaf_count(config) < leaves:
            if writer.poll() is not None:
                pytest.fail(f"the writer exited early: {writer.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail(f"the log reached only {leaf_count(config)} leaves in 30 s")
            time.sleep(0.02)
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
        writer.stderr.close()
    assert writer.returncode == -signal.SIGKILL


def leaf_count(config: StoreConfig) -> int:
    return int(rows(config, "SELECT COUNT(*) FROM ledger_leaves")[0][0])
