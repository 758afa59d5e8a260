"""The database itself refuses to change the ledger (DESIGN rule 1, LEDGER_FORMAT.md §11).

UPDATE and DELETE on every append-only table are refused by triggers on both stores, TRUNCATE
too on PostgreSQL, whoever asks (a plain connection to the SQLite file, the PostgreSQL superuser);
the rows are unchanged afterwards. On PostgreSQL the application's writer role cannot drop or
disable those triggers, and its UPDATE is refused like anyone's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from events import store
from events.config import StoreConfig, parse_database_url
from events.guards import WRITER_ROLE
from events.ledger import Ledger
from events.schema import APPEND_ONLY_TABLES, MID_LINKS, RECENT_LINKS
from tests.conftest import pg_connect
from tests.support import Chart, init_practice, patient, user

# A change to a column of each table that would matter if it went through.
CHANGES = {
    "stored_events": "topic = 'forged'",
    "ledger_leaves": "version = version + 1",
    "ledger_links_main": "seq = seq + 1",
    "ledger_checkpoints": "size = size + 1",
    "ledger_keys": "seq = seq + 1",
    "ledger_cosignatures": "line = 'forged'",
    "ledger_timestamps": "size = size + 1",
}
POSTGRES_ONLY = pytest.mark.parametrize(
    "store_config", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def test_every_append_only_table_has_a_change_to_try() -> None:
    assert set(CHANGES) == set(APPEND_ONLY_TABLES)


@pytest.fixture
def conn(store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A practice with rows in every table, and a plain connection to its tables."""
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, every_events=10**9, every_seconds=10**9)
    try:
        # On SQLite the first appends' links are merged and settled into main (every append
        # crosses a multiple of 1) and the last one's stay in recent.
        monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 1)
        monkeypatch.setattr(store, "LINKS_SETTLE_EVERY", 1)
        for subjects in [(patient(),), (patient(), user())]:
            chart = Chart(subjects=subjects, text="opened")
            chart.note(subjects=subjects, text="noted")
            ledger.save(chart)
        monkeypatch.setattr(store, "LINKS_MERGE_EVERY", 10**9)
        monkeypatch.setattr(store, "LINKS_SETTLE_EVERY", 10**9)
        ledger.save(Chart(subjects=(patient(),), text="opened"))
        ledger.checkpointer.issue()
        # What events/witnessing.py keeps of a witness's and a TSA's answers (the guard
        # does not look at the content).
        with ledger.db.write(lock=False) as c:
            c.execute(
                "INSERT INTO ledger_cosignatures (size, witness, line) VALUES (?, ?, ?)",
                (1, "witness.example/w1", "— witness.example/w1 AAAA"),
            )
            c.execute(
                "INSERT INTO ledger_timestamps (size, tsa, response) VALUES (?, ?, ?)",
                (1, "https://tsa.example/", b"\x30\x00"),
            )
    finally:
        ledger.close()
    if store_config.database_url is None:
        connection: Any = sqlite3.connect(store_config.sqlite_path, isolation_level=None)
    else:
        connection = pg_connect(store_config.database_url)
        schema = parse_database_url(store_config.database_url).schema
        connection.execute(f'SET search_path TO "{schema}"')
    try:
        yield connection
    finally:
        connection.close()


def snapshot(conn: Any, table: str) -> list[tuple[Any, ...]]:
    rows = [tuple(r) for r in conn.execute(f"SELECT * FROM {table}").fetchall()]
    assert rows, f"{table} should have rows to protect"
    return sorted(rows, key=repr)


def refusal(conn: Any) -> type[Exception]:
    if isinstance(conn, sqlite3.Connection):
        return sqlite3.IntegrityError  # RAISE(ABORT, ...) in a trigger
    return psycopg.errors.InsufficientPrivilege  # the trigger's ERRCODE


@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_update_and_delete_are_refused_and_the_rows_are_unchanged(conn: Any, table: str) -> None:
    before = snapshot(conn, table)
    with pytest.raises(
        refusal(conn), match=f"^chartledger: {table} is append-only, UPDATE refused"
    ):
        conn.execute(f"UPDATE {table} SET {CHANGES[table]}")
    with pytest.raises(
        refusal(conn), match=f"^chartledger: {table} is append-only, DELETE refused"
    ):
        conn.execute(f"DELETE FROM {table}")
    assert snapshot(conn, table) == before


@POSTGRES_ONLY
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_truncate_is_refused_on_postgresql_and_the_rows_are_unchanged(
    conn: Any, table: str
) -> None:
    before = snapshot(conn, table)
    with pytest.raises(
        psycopg.errors.InsufficientPrivilege,
        match=f"^chartledger: {table} is append-only, TRUNCATE refused",
    ):
        conn.execute(f"TRUNCATE {table}")
    assert snapshot(conn, table) == before


def test_recent_links_are_never_rewritten_and_leave_only_once_merged(conn: Any) -> None:
    # SQLite's writer left the last append's links there; PostgreSQL's writes none there, but
    # rows there are guarded all the same.
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(f"INSERT INTO {RECENT_LINKS} VALUES ({mark}, {mark}, {mark})", ("user:x", 1, 0))
    before = snapshot(conn, RECENT_LINKS)
    assert snapshot(conn, "ledger_links_main")  # and main has rows of its own
    with pytest.raises(refusal(conn), match=r"^chartledger: .*UPDATE refused"):
        conn.execute(f"UPDATE {RECENT_LINKS} SET seq = seq + 1")
    with pytest.raises(refusal(conn), match=r"^chartledger: a recent link leaves only once merged"):
        conn.execute(f"DELETE FROM {RECENT_LINKS}")
    assert snapshot(conn, RECENT_LINKS) == before
    # Once main holds a row, the same row may leave recent: what the merge does.
    row = before[0]
    conn.execute(f"INSERT INTO ledger_links_main VALUES ({mark}, {mark}, {mark})", row)
    conn.execute(f"DELETE FROM {RECENT_LINKS} WHERE subject = {mark} AND seq = {mark}", row[:2])
    left = conn.execute(f"SELECT * FROM {RECENT_LINKS}").fetchall()
    assert sorted((tuple(r) for r in left), key=repr) == before[1:]


def test_mid_links_are_never_rewritten_and_leave_only_once_settled(conn: Any) -> None:
    mark = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(f"INSERT INTO {MID_LINKS} VALUES ({mark}, {mark}, {mark})", ("user:x", 1, 0))
    before = snapshot(conn, MID_LINKS)
    with pytest.raises(refusal(conn), match=r"^chartledger: .*UPDATE refused"):
        conn.execute(f"UPDATE {MID_LINKS} SET seq = seq + 1")
    assert snapshot(conn, MID_LINKS) == before
    with pytest.raises(refusal(conn), match=r"^chartledger: a recent link leaves only once merged"):
        conn.execute(f"DELETE FROM {MID_LINKS}")
    # A recent link may leave once mid holds it (a merge), and mid's once main does (settling).
    conn.execute(f"INSERT INTO {RECENT_LINKS} VALUES ({mark}, {mark}, {mark})", ("user:x", 1, 0))
    conn.execute(f"DELETE FROM {RECENT_LINKS} WHERE subject = 'user:x'")
    conn.execute(f"INSERT INTO ledger_links_main VALUES ({mark}, {mark}, {mark})", ("user:x", 1, 0))
    conn.execute(f"DELETE FROM {MID_LINKS} WHERE subject = 'user:x'")
    assert conn.execute(f"SELECT * FROM {MID_LINKS}").fetchall() == []


@POSTGRES_ONLY
def test_truncate_of_recent_links_is_refused_on_postgresql(conn: Any) -> None:
    conn.execute(f"INSERT INTO {RECENT_LINKS} VALUES ('user:x', 1, 0)")
    before = snapshot(conn, RECENT_LINKS)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="TRUNCATE refused"):
        conn.execute(f"TRUNCATE {RECENT_LINKS}")
    conn.execute(f"SET ROLE {WRITER_ROLE}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="leaves only once merged"):
        conn.execute(f"DELETE FROM {RECENT_LINKS}")
    conn.execute("RESET ROLE")
    assert snapshot(conn, RECENT_LINKS) == before


def test_data_keys_are_never_rewritten_but_may_be_deleted_for_disposal(conn: Any) -> None:
    before = snapshot(conn, "ledger_data_keys")
    message = (
        "data keys are never rewritten, UPDATE refused"
        if isinstance(conn, sqlite3.Connection)
        else "ledger_data_keys is append-only, UPDATE refused"
    )
    with pytest.raises(refusal(conn), match=f"^chartledger: {message}"):
        conn.execute("UPDATE ledger_data_keys SET wrapped = wrapped")
    assert snapshot(conn, "ledger_data_keys") == before
    subject = next(s for _, s, _ in before if s != "practice")
    placeholder = "?" if isinstance(conn, sqlite3.Connection) else "%s"
    conn.execute(f"DELETE FROM ledger_data_keys WHERE subject = {placeholder}", (subject,))
    assert snapshot(conn, "ledger_data_keys") == [r for r in before if r[1] != subject]


# -- PostgreSQL: the writer role -----------------------------------------------------------


def triggers(conn: Any) -> list[tuple[str, str, str]]:
    """(table, trigger, enabled) of the ledger's triggers in the current schema."""
    return conn.execute(
        "SELECT c.relname, t.tgname, t.tgenabled FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT t.tgisinternal ORDER BY 1, 2"
    ).fetchall()


@POSTGRES_ONLY
def test_the_writer_role_cannot_drop_or_disable_the_triggers(conn: Any) -> None:
    before = triggers(conn)
    # and data keys, require-leaf, recent and mid links' three each, tiles' two, heads' two
    assert len(before) == 2 * len(APPEND_ONLY_TABLES) + 12
    assert all(enabled == "O" for _, _, enabled in before)
    conn.execute(f"SET ROLE {WRITER_ROLE}")
    owner = psycopg.errors.InsufficientPrivilege
    for table in APPEND_ONLY_TABLES:
        for statement in [
            f"DROP TRIGGER {table}_refuse_change ON {table}",
            f"DROP TRIGGER {table}_refuse_truncate ON {table}",
            f"ALTER TABLE {table} DISABLE TRIGGER {table}_refuse_change",
            f"ALTER TABLE {table} DISABLE TRIGGER ALL",
            f"DROP TABLE {table}",
        ]:
            with pytest.raises(owner, match=rf"^must be owner of (table|relation) {table}$"):
                conn.execute(statement)
    with pytest.raises(
        owner,
        match=r"^(permission denied for schema \w+|must be owner of function chartledger_refuse)$",
    ):
        conn.execute(
            "CREATE OR REPLACE FUNCTION chartledger_refuse() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$"
        )
    with pytest.raises(
        owner, match=r'^permission denied to set parameter "session_replication_role"'
    ):
        conn.execute("SET session_replication_role = replica")
    conn.execute("RESET ROLE")
    assert triggers(conn) == before


@POSTGRES_ONLY
@pytest.mark.parametrize("table", APPEND_ONLY_TABLES)
def test_the_writer_role_cannot_update_delete_or_truncate_either(conn: Any, table: str) -> None:
    before = snapshot(conn, table)
    conn.execute(f"SET ROLE {WRITER_ROLE}")
    # UPDATE is granted (eventsourcing's LOCK TABLE needs it); the trigger refuses it.
    with pytest.raises(
        psycopg.errors.InsufficientPrivilege,
        match=f"^chartledger: {table} is append-only, UPDATE refused",
    ):
        conn.execute(f"UPDATE {table} SET {CHANGES[table]}")
    for statement in [f"DELETE FROM {table}", f"TRUNCATE {table}"]:
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match=f"^permission denied for table {table}$"
        ):
            conn.execute(statement)
    conn.execute("RESET ROLE")
    assert snapshot(conn, table) == before
