"""A ledger worth tampering with, and an attacker holding the database as its owner would.

The ``attacker`` fixture runs on both stores (``store_config`` from tests/conftest.py). It
initialises a practice, appends 40 events for 5 patients (interleaved, several per patient),
signs a checkpoint over all of them, closes the application, and hands over a raw connection
to the real tables with the append-only triggers out of the way:

- SQLite: a plain ``sqlite3`` connection to the file, after dropping every trigger (anyone
  holding the file can);
- PostgreSQL: a superuser connection in the test schema with ``session_replication_role =
  replica``, so no ordinary trigger fires (what the schema owner or a superuser can do).

It also runs both verifiers the way an operator would: ``chartledger verify`` (with the
practice's keys; opens every payload) and ``python -m verify store`` (keyless, raw tables).
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from api.cli import main as chartledger
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from tests.conftest import pg_connect
from tests.support import Chart, init_practice, patient, set_env
from verify.__main__ import main as verify_main
from verify.canonical import decode

PATIENTS = 5
ROUNDS = 8  # events per patient: one Opened, then seven Noted
EVENTS = PATIENTS * ROUNDS
FIRST = 1  # position 0 is the practice's own Created event, from `chartledger init`
CHECKPOINT = FIRST + EVENTS  # the size of the checkpoint that covers every event


@dataclass(frozen=True)
class Event:
    """What the fixture appended at one position."""

    position: int
    patient: str
    stream: uuid.UUID
    version: int


@dataclass(frozen=True)
class Verdict:
    """One verifier's exit status and what it printed."""

    code: int
    out: str

    def fails_at(self, where: str, because: str = "") -> bool:
        """A ``FAIL: <where>: ...<because>...`` line, where ``where`` is e.g. "position 17"."""
        line = rf"^FAIL: {re.escape(where)}(?![0-9]):.*{re.escape(because)}"
        return re.search(line, self.out, re.M) is not None


# Where the store keeps the links (the ledger_links view reads both): an attacker edits them there.
LINK_TABLES = ("ledger_links_main", "ledger_links_recent")


@dataclass
class Attacker:
    config: StoreConfig
    monkeypatch: pytest.MonkeyPatch
    capsys: pytest.CaptureFixture[str]
    conn: Any
    key_id: str  # the genesis signing key, as `chartledger init` printed it
    events: list[Event] = field(default_factory=list)

    # -- where things are ------------------------------------------------------------------

    @property
    def dialect(self) -> str:
        return "sqlite" if self.config.database_url is None else "postgres"

    @property
    def links_table(self) -> str:
        """Where the store put the populated events' links: SQLite keeps them in recent until
        4,096 positions are reached, PostgreSQL's writer puts them straight into main."""
        return "ledger_links_recent" if self.dialect == "sqlite" else "ledger_links_main"

    def at(self, position: int) -> Event:
        (event,) = [e for e in self.events if e.position == position]
        return event

    def of_patient(self, index: int) -> list[Event]:
        """The events of the index-th patient, in log order."""
        return [e for e in self.events if e.patient == self.events[index].patient]

    def stream(self, value: uuid.UUID) -> Any:
        """A stream id as the store's columns hold it: 32 hex digits on SQLite, uuid on PG."""
        return value.hex if self.dialect == "sqlite" else value

    # -- raw SQL, triggers bypassed ----------------------------------------------------------

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        return list(self.conn.execute(sql, params).fetchall())

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self.dialect == "postgres":
            sql = sql.replace("?", "%s")
        self.conn.execute(sql, params)

    def state(self, position: int) -> bytes:
        ((state,),) = self.rows("SELECT state FROM stored_events WHERE position = ?", (position,))
        return bytes(state)

    def set_state(self, position: int, state: bytes) -> None:
        self.execute("UPDATE stored_events SET state = ? WHERE position = ?", (state, position))

    def record(self, position: int) -> dict[str, Any]:
        """The stored record {"header": bytes, "sealed": bytes}, decoded."""
        return decode(self.state(position))

    def header(self, position: int) -> dict[str, Any]:
        return decode(self.record(position)["header"])

    def leaf(self, position: int) -> bytes:
        ((leaf,),) = self.rows("SELECT leaf FROM ledger_leaves WHERE position = ?", (position,))
        return bytes(leaf)

    def set_leaf(self, position: int, leaf: bytes) -> None:
        self.execute("UPDATE ledger_leaves SET leaf = ? WHERE position = ?", (leaf, position))

    def note(self, size: int) -> bytes:
        ((note,),) = self.rows("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))
        return bytes(note)

    def set_note(self, size: int, note: bytes) -> None:
        self.execute("UPDATE ledger_checkpoints SET note = ? WHERE size = ?", (note, size))

    def delete_event(self, position: int) -> None:
        """An event, its leaf and its links, gone as if never appended."""
        self.execute("DELETE FROM stored_events WHERE position = ?", (position,))
        self.execute("DELETE FROM ledger_leaves WHERE position = ?", (position,))
        for table in (*LINK_TABLES, "ledger_links_mid"):
            self.execute(f"DELETE FROM {table} WHERE position = ?", (position,))
        # and the stored tiles and heads, caches the application rebuilds when opened
        self.execute("DELETE FROM ledger_tiles")
        self.execute("DELETE FROM ledger_heads")

    # -- the verifiers -----------------------------------------------------------------------

    def chartledger_verify(self, *extra: str) -> Verdict:
        set_env(self.config, self.monkeypatch)
        self.capsys.readouterr()
        try:
            code = chartledger(["verify", *extra])
        finally:
            self._bypass_triggers_again()
        return Verdict(code, self.capsys.readouterr().out)

    def store_verify(self, *extra: str) -> Verdict:
        if self.config.database_url is None:
            where = ["--sqlite", str(self.config.sqlite_path)]
        else:
            where = ["--database-url", self.config.database_url]
        self.capsys.readouterr()
        code = verify_main(["store", *where, *extra])
        return Verdict(code, self.capsys.readouterr().out)

    def both(self, *extra: str) -> tuple[Verdict, Verdict]:
        """(chartledger verify, python -m verify store), with the same extra options."""
        return self.chartledger_verify(*extra), self.store_verify(*extra)

    @contextmanager
    def ledger(self) -> Iterator[Ledger]:
        """The application on this store, as a forger holding the practice's keys would use it.

        Opening it re-installs the SQLite triggers; they are dropped again once it is closed.
        """
        set_env(self.config, self.monkeypatch)
        ledger = Ledger(self.config, every_events=10**9, every_seconds=10**9)
        try:
            yield ledger
        finally:
            ledger.close()
            self._bypass_triggers_again()

    def _bypass_triggers_again(self) -> None:
        # Opening the application (``chartledger verify`` does too) re-creates SQLite triggers.
        if self.dialect == "sqlite":
            drop_triggers(self.conn)


def drop_triggers(conn: sqlite3.Connection) -> None:
    names = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
    assert names, "the store should have had its append-only triggers"
    for (name,) in names:
        conn.execute(f'DROP TRIGGER "{name}"')


def raw_connection(config: StoreConfig) -> Any:
    """The real tables, as their owner sees them, with no trigger in the way."""
    if config.database_url is None:
        conn = sqlite3.connect(config.sqlite_path, isolation_level=None)
        drop_triggers(conn)
        return conn
    schema = parse_database_url(config.database_url).schema
    conn = pg_connect(config.database_url)
    conn.execute(f'SET search_path TO "{schema}"')
    conn.execute("SET session_replication_role = replica")  # superuser: triggers off
    return conn


def populate(config: StoreConfig) -> list[Event]:
    """40 events, 8 per patient, interleaved; then a checkpoint over all of them."""
    ledger = Ledger(config, every_events=10**9, every_seconds=10**9)
    try:
        patients = [patient() for _ in range(PATIENTS)]
        charts: list[Chart] = []
        events: list[Event] = []
        position = FIRST
        for round_ in range(ROUNDS):
            for index, subject in enumerate(patients):
                if round_ == 0:
                    charts.append(Chart(subjects=(subject,), text="opened"))
                else:
                    charts[index].note(subjects=(subject,), text=f"note {round_}")
                ledger.save(charts[index])
                events.append(Event(position, subject, charts[index].id, round_ + 1))
                position += 1
        checkpoint = ledger.checkpointer.issue()
        assert checkpoint.size == CHECKPOINT
    finally:
        ledger.close()
    return events


def genesis_key_id(config: StoreConfig) -> str:
    ledger = Ledger(config, every_events=10**9, every_seconds=10**9)
    try:
        return ledger.key_history()[0].key_id
    finally:
        ledger.close()


@pytest.fixture
def attacker(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Attacker]:
    init_practice(store_config, monkeypatch)
    events = populate(store_config)
    key_id = genesis_key_id(store_config)
    conn = raw_connection(store_config)
    try:
        yield Attacker(store_config, monkeypatch, capsys, conn, key_id, events)
    finally:
        conn.close()
