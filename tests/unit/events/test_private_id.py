"""Ids for low-entropy values: stable for the practice, unguessable without its master key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.config import StoreConfig
from events.ledger import Ledger
from tests.support import init_practice


@pytest.fixture(scope="module")
def two_practices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Ledger, Ledger]:
    ledgers = []
    for name in ("a", "b"):
        config = StoreConfig(home=Path(tmp_path_factory.mktemp(name)) / "home")
        with pytest.MonkeyPatch.context() as monkeypatch:
            init_practice(config, monkeypatch)
        ledgers.append(Ledger(config))
    return ledgers[0], ledgers[1]


@settings(max_examples=100, deadline=None)
@given(purpose=st.sampled_from(["mrn", "other"]), a=st.text(), b=st.text())
def test_private_ids_are_stable_distinct_and_practice_bound(
    two_practices: tuple[Ledger, Ledger], purpose: str, a: str, b: str
) -> None:
    mine, theirs = two_practices
    assert mine.private_id(purpose, a) == mine.private_id(purpose, a)
    assert (mine.private_id(purpose, a) == mine.private_id(purpose, b)) == (a == b)
    assert mine.private_id(purpose, a) != theirs.private_id(purpose, a)
    assert mine.private_id("mrn", a) != mine.private_id("mrn-other", a)
