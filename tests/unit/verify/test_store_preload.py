"""What the store check's fork server preloads for its workers."""

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
