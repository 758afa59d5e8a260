"""Saves from many threads shared into one transaction keep every caller's own actor and
session, return only once committed, and all fail together when the store refuses the batch."""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import psycopg
import pytest

from events.config import StoreConfig, parse_database_url
from events.context import acting
from events.ledger import Ledger
from projections.runner import read_entries
from tests.support import Chart, init_practice, patient, user
from verify.store import verify_store

THREADS = 12


def _in_threads(work: Any) -> list[BaseException | None]:
    start = threading.Barrier(THREADS)
    outcomes: list[BaseException | None] = [None] * THREADS

    def run(i: int) -> None:
        start.wait()
        try:
            work(i)
        except BaseException as error:  # reported to the test below
            outcomes[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_each_caller_returns_committed_under_its_own_actor(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    actors = [user() for _ in range(THREADS)]
    subjects = [patient() for _ in range(THREADS)]
    seen_right_after: list[bool] = [False] * THREADS

    def work(i: int) -> None:
        chart = Chart(subjects=(subjects[i],), text=f"read {i}")
        with acting(actors[i], f"session-{i}"):
            for _ in range(3):
                ledger.save_together(Chart(subjects=(subjects[i],), text="again"))
            ledger.save_together(chart)
        # Committed before save_together returned: another connection sees it at once.
        seen_right_after[i] = ledger.repository.get(chart.id).texts == [f"read {i}"]

    assert _in_threads(work) == [None] * THREADS
    assert all(seen_right_after)
    entries = [e for e in read_entries(ledger, 0, 10_000) if e.header.subjects]
    charts = [e for e in entries if e.header.type.endswith("Chart.Opened")]
    assert len(charts) == 4 * THREADS
    for entry in charts:
        i = subjects.index(entry.header.subjects[0])
        assert (entry.header.actor, entry.header.session) == (actors[i], f"session-{i}")
    assert verify_store(_location(store_config)).ok


def test_a_refused_batch_fails_every_caller_in_it_and_writes_nothing(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    before = _size(ledger)
    _refuse_charts(store_config)

    def work(i: int) -> None:
        with acting(user(), None):
            ledger.save_together(Chart(subjects=(patient(),), text="refused"))

    outcomes = _in_threads(work)
    assert all(isinstance(o, Exception) for o in outcomes)
    assert _size(ledger) == before
    _allow_charts(store_config)
    ledger.save_together(Chart(subjects=(patient(),), text="after"))
    assert _size(ledger) == before + 1
    assert verify_store(_location(store_config)).ok


def _size(ledger: Ledger) -> int:
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM stored_events")
        return int(c.fetchone()[0])


def _location(config: StoreConfig) -> str:
    return config.database_url or str(config.sqlite_path)


def _refuse_charts(config: StoreConfig) -> None:
    if config.database_url is None:
        with sqlite3.connect(config.sqlite_path, isolation_level=None) as conn:
            conn.execute(
                "CREATE TRIGGER refuse_charts BEFORE INSERT ON stored_events "
                "WHEN NEW.topic LIKE '%Chart%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        return
    with _pg(config) as conn:
        conn.execute(
            "CREATE FUNCTION refuse_charts() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused'; END $$"
        )
        conn.execute(
            "CREATE TRIGGER refuse_charts BEFORE INSERT ON stored_events FOR EACH ROW "
            "WHEN (NEW.topic LIKE '%Chart%') EXECUTE FUNCTION refuse_charts()"
        )


def _allow_charts(config: StoreConfig) -> None:
    if config.database_url is None:
        with sqlite3.connect(config.sqlite_path, isolation_level=None) as conn:
            conn.execute("DROP TRIGGER refuse_charts")
        return
    with _pg(config) as conn:
        conn.execute("DROP TRIGGER refuse_charts ON stored_events")


def _pg(config: StoreConfig) -> psycopg.Connection:
    assert config.database_url is not None
    location = parse_database_url(config.database_url)
    conn = psycopg.connect(location.conninfo(), autocommit=True)
    conn.execute(f'SET search_path TO "{location.schema}"')
    return conn
