"""``events/named_lock.held``: one holder at a time, on both stores. Two ledgers on one home
(two processes of one machine) exclude each other through the lock file; on PostgreSQL two
ledgers with homes of their own (two machines sharing the database) exclude each other through
the database's advisory lock, and a holder's lock ends with its block."""

from __future__ import annotations

import dataclasses
import shutil
import threading
import time
from pathlib import Path

import pytest

from events.config import StoreConfig
from events.ledger import Ledger
from events.named_lock import held
from tests.support import QUIET


def test_one_holder_at_a_time_on_one_home(ledger: Ledger) -> None:
    home = ledger.config.home
    other = Ledger(ledger.config, **QUIET)
    try:
        with held(ledger.db, home, "job", wait=False) as mine:
            assert mine
            with held(other.db, home, "job", wait=False) as theirs:
                assert not theirs
            with held(other.db, home, "another-job", wait=False) as unrelated:
                assert unrelated  # locks of other names are other locks
        with held(other.db, home, "job", wait=False) as theirs:
            assert theirs  # released with the block
    finally:
        other.close()


def test_a_waiting_holder_gets_the_lock_when_the_first_lets_go(ledger: Ledger) -> None:
    home = ledger.config.home
    order: list[str] = []
    with held(ledger.db, home, "job", wait=True):

        def wait_for_it() -> None:
            with held(ledger.db, home, "job", wait=True) as got:
                order.append(f"second {got}")

        waiter = threading.Thread(target=wait_for_it)
        waiter.start()
        time.sleep(0.5)
        order.append("first done")
    waiter.join(30)
    assert order == ["first done", "second True"]


def test_servers_on_other_machines_sharing_a_postgresql_store_exclude_each_other(
    ledger: Ledger, store_config: StoreConfig, tmp_path: Path
) -> None:
    if store_config.database_url is None:
        pytest.skip("one SQLite file is one machine's: its lock file is the whole lock")
    other_home = tmp_path / "elsewhere"  # the other machine's copy of the practice home
    shutil.copytree(store_config.home, other_home)
    elsewhere = Ledger(dataclasses.replace(store_config, home=other_home), **QUIET)
    try:
        with held(ledger.db, ledger.config.home, "job", wait=False) as mine:
            assert mine
            with held(elsewhere.db, elsewhere.config.home, "job", wait=False) as theirs:
                assert not theirs
        with held(elsewhere.db, elsewhere.config.home, "job", wait=False) as theirs:
            assert theirs
    finally:
        elsewhere.close()
