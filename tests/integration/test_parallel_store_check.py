"""The store check split over worker processes finds what the single-process check finds."""

from __future__ import annotations

import sqlite3
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest

import verify.store
from events.config import StoreConfig
from events.ledger import Ledger
from events.verification import store_location
from tests.support import Chart, init_practice
from tests.tamper_tools import raw_sql, rewrite_leaf_link
from verify.ranges import RANGE_SIZE
from verify.store import check_store, open_store
from verify.tiles import TILE_WIDTH


@pytest.fixture
def big_ledger(store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    """A log spanning three ranges, with checkpoints inside and at range edges."""
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, every_events=10**9)
    subjects = [f"patient:p{i}" for i in range(300)]
    total = 2 * RANGE_SIZE + 1500
    for start in range(1, total, 500):
        ledger.save(
            *[
                Chart(subjects=(subjects[i % 300],), text="x")
                for i in range(start, min(total, start + 500))
            ]
        )
        if start in (1, 4001, 8001):
            ledger.checkpointer.issue()
    ledger.checkpointer.issue()
    yield ledger
    ledger.close()


def _check(ledger: Ledger, workers: int):  # type: ignore[no-untyped-def]
    store = open_store(store_location(ledger))
    try:
        return check_store(store, workers=workers)
    finally:
        store.close()


def test_two_workers_and_one_agree_on_a_valid_store(big_ledger: Ledger) -> None:
    one, two, three = _check(big_ledger, 1), _check(big_ledger, 2), _check(big_ledger, 3)
    assert one.problems == [] and two.problems == [] and three.problems == []
    assert one.size == two.size == three.size > 2 * RANGE_SIZE
    assert one.root == two.root == three.root
    assert one.checkpoints == two.checkpoints == three.checkpoints >= 4
    assert one.events == two.events == three.events == one.size


class _BrokenPool:
    """A pool whose processes could not start (as for a script without the __main__ guard)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.submitted = 0

    def submit(self, *args: object) -> Future[str]:
        self.submitted += 1
        if self.submitted > 1:
            raise BrokenProcessPool("a process died")
        future: Future[str] = Future()
        future.set_exception(BrokenProcessPool("a process died"))
        return future

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def test_a_pool_that_breaks_leaves_every_range_to_this_process(
    big_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _check(big_ledger, 1)
    monkeypatch.setattr(verify.store, "ProcessPoolExecutor", _BrokenPool)
    broken = _check(big_ledger, 2)
    assert broken.problems == [] and (broken.root, broken.events) == (one.root, one.events)


def test_a_worker_without_room_for_its_result_leaves_that_range_to_this_process(
    big_ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    one = _check(big_ledger, 1)

    class NoRoom(_BrokenPool):
        def submit(self, *args: object) -> Future[str]:
            future: Future[str] = Future()
            future.set_exception(OSError(28, "No space left on device"))
            return future

    monkeypatch.setattr(verify.store, "ProcessPoolExecutor", NoRoom)
    report = _check(big_ledger, 2)
    assert report.problems == [] and (report.root, report.events) == (one.root, one.events)


def _lines(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [problem.line() for problem in report.problems]


def test_a_chain_broken_across_a_range_edge_is_found_by_the_workers(big_ledger: Ledger) -> None:
    # One worker, two and three give the same report on a tampered store: re-point one later
    # leaf's link, in the third range, to a wrong previous position (only stitching across
    # ranges can see it); and a flipped level-0 tile and a forged links row (compared range by
    # range), so that each kind of finding the ranges hand to the stitch is in it. (One
    # fixture for all of these: building it is the cost of this file.)
    tile = RANGE_SIZE // TILE_WIDTH + 3  # a tile of the second range
    with raw_sql(big_ledger) as conn:
        mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        (hashes,) = conn.execute(
            f"SELECT hashes FROM ledger_tiles WHERE level = 0 AND idx = {tile}"
        ).fetchone()
        flipped = bytearray(hashes)
        flipped[32 * 9 + 4] ^= 1
        conn.execute(
            f"UPDATE ledger_tiles SET hashes = {mark} WHERE level = 0 AND idx = {tile}",
            (bytes(flipped),),
        )
        conn.execute(
            "INSERT INTO ledger_links_main (subject, seq, position) VALUES "
            f"({mark}, {mark}, {mark})",
            ("patient:p7", 10**6, RANGE_SIZE + 5),
        )
    rewrite_leaf_link(big_ledger, 2 * RANGE_SIZE + 3)
    one, two, three = _check(big_ledger, 1), _check(big_ledger, 2), _check(big_ledger, 3)
    assert _lines(one) == _lines(two) == _lines(three)
    assert (one.root, one.events, one.tiles) == (two.root, two.events, two.tiles)
    assert (one.root, one.events, one.tiles) == (three.root, three.events, three.tiles)
    wheres = [p.where for p in one.problems]
    assert f"tile 0/{tile}" in wheres and "ledger_links" in wheres
    assert f"position {2 * RANGE_SIZE + 3}" in wheres
    (named,) = [p for p in one.problems if p.where == f"tile 0/{tile}"]
    assert f"hash 9 (level 0, index {tile * TILE_WIDTH + 9})" in str(named.error)
