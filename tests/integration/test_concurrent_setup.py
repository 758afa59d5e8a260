"""Server workers that start together on a new PostgreSQL store all come up.

`chartledger serve` starts several worker processes at once; each creates the views' tables it
finds missing. PostgreSQL's ``CREATE TABLE IF NOT EXISTS`` races with itself (a duplicate key in
``pg_type``, or "tuple concurrently updated"), and a worker that lost died at start. The store's
set-up lock (``Database.setting_up``) serialises them. SQLite is run too: its own lock does it.
"""

from __future__ import annotations

import multiprocessing
import traceback
from pathlib import Path

import pytest

from api.deps import Services
from api.settings import Settings
from events.config import StoreConfig
from tests.support import init_practice

WORKERS = 6


def _start(
    config: StoreConfig, ready: multiprocessing.Barrier, errors: multiprocessing.Queue
) -> None:
    try:
        ready.wait(timeout=60)
        services = Services.open(Settings(store=config, background=False))
        services.ledger.close()
        errors.put("")
    except BaseException:
        errors.put(traceback.format_exc(limit=3))


def test_workers_starting_together_all_come_up(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    init_practice(store_config, monkeypatch)
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(WORKERS)
    errors = context.Queue()
    processes = [
        context.Process(target=_start, args=(store_config, ready, errors)) for _ in range(WORKERS)
    ]
    for p in processes:
        p.start()
    outcomes = [errors.get(timeout=120) for _ in processes]
    for p in processes:
        p.join(timeout=30)
    failed = [o for o in outcomes if o]
    assert not failed, failed[0]
