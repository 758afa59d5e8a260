"""How the store check starts its workers and cuts the log into ranges for them."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from verify.ranges import RangeResult
from verify.store import _forkserver_preload


def test_the_modules_the_main_modules_names_come_from_are_preloaded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = types.ModuleType("__main__")
    main.json = json  # a module
    main.Path = Path  # a class, from pathlib
    main.RangeResult = RangeResult  # a class, from verify.ranges
    main.helper = lambda: None  # defined in __main__ itself: not importable
    main.OUT = Path("/tmp")  # an instance: not followed
    gone = types.FunctionType((lambda: None).__code__, {})
    gone.__module__ = "not_imported_anywhere"
    main.gone = gone  # from a module this process never imported
    monkeypatch.setitem(sys.modules, "__main__", main)
    main.helper.__module__ = "__main__"
    assert _forkserver_preload() == [
        "__main__", "json", "pathlib", "verify.ranges", "verify.store",
    ]  # fmt: skip


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
@pytest.mark.parametrize("size", [0, 1, 8191, 8192, 17884, 50_000, 100_001, 10**6, 10**8])
def test_ranges_are_powers_of_two_and_three_a_worker_where_the_log_allows(
    size: int, workers: int
) -> None:
    from verify.ranges import MAX_RANGE_SIZE, RANGE_SIZE
    from verify.store import _range_size

    step = _range_size(size, workers)
    assert RANGE_SIZE <= step <= MAX_RANGE_SIZE and step & (step - 1) == 0
    ranges = -(-size // step)
    assert step == RANGE_SIZE or ranges >= 3 * workers
    assert step == MAX_RANGE_SIZE or -(-size // (2 * step)) < 3 * workers


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
@pytest.mark.parametrize("size", [0, 1, 2049, 8192, 17884, 50_000, 100_001, 10**6 + 7])
def test_the_spans_cover_the_log_each_aligned_to_its_length_and_shorter_at_the_end(
    size: int, workers: int
) -> None:
    from verify.ranges import MAX_RANGE_SIZE
    from verify.store import TAIL_RANGE_SIZE, _range_size, _spans

    spans = _spans(size, workers)
    if not size:
        assert spans == []
        return
    assert [a for a, _ in spans] == [0, *(b for _, b in spans[:-1])]
    assert spans[-1][1] == size
    steps = [b - a for a, b in spans[:-1]]
    for (a, _), step in zip(spans, steps, strict=False):
        assert step & (step - 1) == 0 and a % step == 0 and step <= MAX_RANGE_SIZE
    assert steps == sorted(steps, reverse=True)  # never longer again
    if steps:
        assert spans[-1][1] - spans[-1][0] <= steps[-1] and spans[-1][0] % steps[-1] == 0
    if workers == 1:
        assert all(step == _range_size(size, 1) for step in steps)
    elif size > 4 * TAIL_RANGE_SIZE * workers:
        assert min(steps) == TAIL_RANGE_SIZE  # the tail gets down to the shortest
