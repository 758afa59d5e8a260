"""The audit and report queries read from a read-only replica when one is configured
(``CHARTLEDGER_REPLICA_DATABASE_URL``, events/replica.py).

No streaming replica can be set up here without reconfiguring the shared PostgreSQL cluster, so
the "replica" is a second connection URL to the same database as a login role of this test's own
whose transactions are read-only (``default_transaction_read_only``) and which may only SELECT:
what the routing does is the same. A replica behind its primary is played by a schema holding an
older view position; one that is away, by a port nothing listens on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator

import pytest

from events.config import ConfigError, StoreConfig
from events.ledger import Ledger
from events.replica import Replica
from projections.audit import audit_report
from projections.rebuild import all_projections
from projections.runner import Runner
from tests.conftest import PG_URL, pg_connect
from tests.support import QUIET, init_practice


def test_a_replica_needs_a_postgresql_store() -> None:
    env = {"CHARTLEDGER_HOME": "/tmp/x", "CHARTLEDGER_REPLICA_DATABASE_URL": PG_URL or "x"}
    with pytest.raises(ConfigError, match="only a PostgreSQL store has replicas"):
        StoreConfig.from_env(env)


@pytest.fixture
def read_only_url(store_config: StoreConfig) -> Iterator[str]:
    """A login role that may only read the store's schema, every transaction read-only."""
    assert store_config.database_url is not None
    schema = store_config.database_url.rsplit("schema=", 1)[1]
    role = "t_ro_" + os.urandom(6).hex()
    with pg_connect() as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"ALTER ROLE {role} SET default_transaction_read_only = on")
    try:
        yield f"postgresql://{role}@127.0.0.1:5432/test?schema={schema}", role, schema
    finally:
        with pg_connect() as conn:
            conn.execute(f'REVOKE ALL ON ALL TABLES IN SCHEMA "{schema}" FROM {role}')
            conn.execute(f'REVOKE ALL ON SCHEMA "{schema}" FROM {role}')
            conn.execute(f"DROP ROLE {role}")


@pytest.mark.parametrize("store_config", ["postgres"], indirect=True)
def test_the_audit_view_is_read_from_the_replica_once_it_has_caught_up(
    store_config: StoreConfig, read_only_url: tuple[str, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, role, schema = read_only_url
    init_practice(store_config, monkeypatch)
    ledger = Ledger(dataclasses.replace(store_config, replica_url=url), **QUIET)
    try:
        Runner(ledger, all_projections()).catch_up()
        with pg_connect() as conn:  # once every table is made, views' too
            conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO {role}')
            conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO {role}')
        assert ledger.replica is not None
        db = ledger.reports_db("audit")
        assert db is ledger.replica.db
        rows = audit_report(db)
        assert rows and rows == audit_report(ledger.db)
        # What serves the reports cannot write.
        refused = r"read-only|permission denied"
        with pytest.raises(Exception, match=refused), db.write(lock=False) as c:
            c.execute("DELETE FROM audit_events")
        assert audit_report(ledger.db) == rows
    finally:
        ledger.close()


@pytest.mark.parametrize("store_config", ["postgres"], indirect=True)
def test_a_replica_behind_or_away_leaves_the_report_to_the_primary(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_practice(store_config, monkeypatch)
    behind = "t_behind_" + os.urandom(6).hex()
    with pg_connect() as conn:
        conn.execute(f'CREATE SCHEMA "{behind}"')
        conn.execute(f'CREATE TABLE "{behind}".projection_positions (name text, position bigint)')
        conn.execute(f"INSERT INTO \"{behind}\".projection_positions VALUES ('audit', 0)")
    ledger = Ledger(store_config, **QUIET)
    # Shorter waits than a server's (1 s for a lagging replica, 2 s to connect): the same path.
    lagging = Replica(f"{PG_URL}?schema={behind}", wait_at_most=0.2)
    away = Replica("postgresql://postgres@127.0.0.1:1/test?schema=nowhere", connect_timeout=0.3)
    try:
        Runner(ledger, all_projections()).catch_up()
        assert lagging.db_for(ledger.db, "audit") is ledger.db
        assert away.db_for(ledger.db, "audit") is ledger.db
        assert away.db_for(ledger.db, "audit") is ledger.db  # at once now: not tried again yet
    finally:
        lagging.close()
        away.close()
        ledger.close()
        with pg_connect() as conn:
            conn.execute(f'DROP SCHEMA "{behind}" CASCADE')
