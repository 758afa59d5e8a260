"""Fixtures shared by every test: one ledger per test on SQLite and on PostgreSQL.

PostgreSQL runs when CHARTLEDGER_TEST_DATABASE_URL is set (the Makefile sets it). When CI=true
or CHARTLEDGER_REQUIRE_POSTGRES=1, a PostgreSQL that cannot be reached fails the test; otherwise
it is skipped with the reason shown.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from tests.support import QUIET, init_practice

PG_URL = os.environ.get("CHARTLEDGER_TEST_DATABASE_URL", "")
REQUIRE_PG = os.environ.get("CI") == "true" or os.environ.get("CHARTLEDGER_REQUIRE_POSTGRES") == "1"


def _unavailable(reason: str) -> None:
    if REQUIRE_PG:
        pytest.fail(f"PostgreSQL is required here but {reason}")
    pytest.skip(f"PostgreSQL tests skipped: {reason}")


def pg_connect(url: str = PG_URL) -> psycopg.Connection:
    return psycopg.connect(parse_database_url(url).conninfo(), autocommit=True, connect_timeout=5)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreConfig]:
    """A fresh, uninitialised practice home: SQLite file, or a new PostgreSQL schema."""
    home = tmp_path / "home"
    if request.param == "sqlite":
        yield StoreConfig(home=home)
        return
    if not PG_URL:
        _unavailable("CHARTLEDGER_TEST_DATABASE_URL is not set")
    try:
        conn = pg_connect()
    except psycopg.Error as e:
        _unavailable(f"it is unreachable: {str(e).strip().splitlines()[0]}")
    schema = "t_" + uuid.uuid4().hex[:16]
    conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield StoreConfig(home=home, database_url=f"{PG_URL}?schema={schema}")
    finally:
        # A connection a test left to the garbage collector (in a cycle) may still hold a
        # snapshot of the schema's tables: collected now, so the DROP below does not wait on it.
        gc.collect()
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@pytest.fixture
def ledger(store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    """A practice initialised on ``store_config``, its ledger open, no automatic checkpoints."""
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    yield ledger
    ledger.close()
