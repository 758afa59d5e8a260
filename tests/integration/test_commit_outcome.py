"""A PostgreSQL append whose connection is lost around COMMIT is resolved by looking, not
guessed (issue 23): kept once if the server committed it, appended again if it did not, and a
real conflict (another writer's event at its version) is still a conflict. With the database
away altogether, requests are 503 and /health says so, until it is back.

The connection really is lost: the ledger reaches PostgreSQL through a small TCP relay that
cuts both sides at the chosen moment, after the server answered COMMIT (the outcome is then
"committed" though the client never hears it) or before the client's COMMIT reaches it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from tests.integration.test_concurrency import assert_verifies, rows
from tests.support import QUIET, Chart, init_practice, patient

pytestmark = pytest.mark.postgres

# The server's CommandComplete for COMMIT (RFC-like: 'C', length 11, "COMMIT\0"), and the text
# of the client's COMMIT as its Parse message carries it.
COMMIT_DONE = b"C\x00\x00\x00\x0bCOMMIT\x00"
COMMIT_SENT = b"COMMIT\x00"


@dataclass
class Cut:
    """When the relay cuts the connection: ``side`` is "after" (the server's answer to COMMIT
    is swallowed) or "before" (the client's COMMIT never arrives); ``meanwhile`` runs once the
    server side is closed and before the client hears of it."""

    side: str
    meanwhile: Callable[[], None] | None = None


def _drop(s: socket.socket) -> None:
    """Close the connection so the peer sees it gone at once (close alone would wait for the
    other pump thread, blocked reading the same socket)."""
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


class Relay:
    def __init__(self, host: str, port: int) -> None:
        self.upstream = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.armed: Cut | None = None
        self.cuts = 0
        self.lock = threading.Lock()
        self.down = False  # the database away: every connection dropped, new ones refused
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def go_down(self) -> None:
        with self.lock:
            self.down = True
            for s in self.sockets:
                _drop(s)
            self.sockets.clear()

    def come_back(self) -> None:
        with self.lock:
            self.down = False

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.down:
                    _drop(client)
                    continue
                server = socket.create_connection(self.upstream)
                self.sockets += [client, server]
            threading.Thread(
                target=self._pump, args=(client, server, "before"), daemon=True
            ).start()
            threading.Thread(target=self._pump, args=(server, client, "after"), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, side: str) -> None:
        marker = COMMIT_SENT if side == "before" else COMMIT_DONE
        try:
            while chunk := src.recv(65536):
                cut = self._take(side) if marker in chunk else None
                if cut is not None:
                    server, client = (dst, src) if side == "before" else (src, dst)
                    _drop(server)
                    if cut.meanwhile is not None:
                        cut.meanwhile()
                    _drop(client)
                    return
                dst.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def _take(self, side: str) -> Cut | None:
        with self.lock:
            if self.armed is None or self.armed.side != side:
                return None
            cut, self.armed = self.armed, None
            self.cuts += 1
            return cut

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def relayed(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[StoreConfig, Relay]]:
    """A PostgreSQL practice, and its URL through a relay (TLS off, so the relay can read)."""
    if store_config.database_url is None:
        pytest.skip("a PostgreSQL connection lost around COMMIT: SQLite has no connection")
    init_practice(store_config, monkeypatch)
    pg = parse_database_url(store_config.database_url)
    relay = Relay(pg.host, pg.port)
    monkeypatch.setenv("PGSSLMODE", "disable")
    url = f"postgresql://{pg.user}@127.0.0.1:{relay.port}/{pg.dbname}?schema={pg.schema}"
    yield replace(store_config, database_url=url), relay
    relay.close()


def versions(config: StoreConfig, chart_id: Any) -> list[int]:
    return [
        r[0]
        for r in rows(
            config,
            "SELECT originator_version FROM stored_events "
            f"WHERE originator_id = '{chart_id}' ORDER BY originator_version",
        )
    ]


def leaves(config: StoreConfig) -> int:
    return int(rows(config, "SELECT COUNT(*) FROM ledger_leaves")[0][0])


SUBJECT = (patient(),)  # one subject, so its data key is read (and cached) by the first save


def opened(ledger: Ledger) -> Chart:
    chart = Chart(SUBJECT, "opened")
    ledger.save(chart)
    return chart


def test_a_write_committed_as_its_connection_was_lost_is_answered_kept_and_kept_once(
    relayed: tuple[StoreConfig, Relay],
    store_config: StoreConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, relay = relayed
    ledger = Ledger(config, **QUIET)
    try:
        chart = opened(ledger)
        chart.note(SUBJECT, "noted")
        relay.armed = Cut("after")
        ledger.save(chart)  # before the fix: IntegrityError, its own row taken for another's
        assert relay.cuts == 1
        chart.note(SUBJECT, "and more")
        ledger.save(chart)  # the ledger goes on from the kept version
    finally:
        ledger.close()
    assert versions(store_config, chart.id) == [1, 2, 3]
    assert_verifies(store_config, capsys, leaves(store_config))


def test_a_write_lost_before_its_commit_reached_the_server_is_appended_again_once(
    relayed: tuple[StoreConfig, Relay],
    store_config: StoreConfig,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, relay = relayed
    direct = Ledger(store_config, **QUIET)
    chart = opened(direct)
    direct.close()
    ledger = Ledger(config, **QUIET)  # a fresh connection: its COMMIT still goes as text
    try:
        mine = ledger.repository.get(chart.id)
        ledger.data_keys.current(SUBJECT[0])  # read now, not inside the cut save
        mine.note(SUBJECT, "noted")
        relay.armed = Cut("before")
        ledger.save(mine)
        assert relay.cuts == 1
    finally:
        ledger.close()
    assert versions(store_config, chart.id) == [1, 2]
    assert_verifies(store_config, capsys, leaves(store_config))


def test_another_writers_event_at_the_version_is_still_a_conflict_after_a_lost_connection(
    relayed: tuple[StoreConfig, Relay],
    store_config: StoreConfig,
) -> None:
    config, relay = relayed
    direct = Ledger(store_config, **QUIET)
    try:
        chart = opened(direct)
        ledger = Ledger(config, **QUIET)
        try:
            mine = ledger.repository.get(chart.id)
            ledger.data_keys.current(SUBJECT[0])
            mine.note(SUBJECT, "mine")
            theirs = direct.repository.get(chart.id)
            theirs.note(SUBJECT, "theirs")
            relay.armed = Cut("before", meanwhile=lambda: direct.save(theirs))
            with pytest.raises(IntegrityError):
                ledger.save(mine)
            assert relay.cuts == 1
        finally:
            ledger.close()
    finally:
        direct.close()
    assert versions(store_config, chart.id) == [1, 2]


def test_with_the_database_away_health_says_so_requests_are_503_and_it_comes_back(
    relayed: tuple[StoreConfig, Relay],
) -> None:
    config, relay = relayed
    settings = Settings(store=config, pbkdf2_iterations=1000, background=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        assert http.get("/health/ready").status_code == 200
        relay.go_down()
        health = http.get("/health")
        ready = http.get("/health/ready")
        refused = http.post("/auth/login", json={"username": "olive", "password": "p" * 12})
        relay.come_back()
        assert health.status_code == 200  # the process is alive, and says what is wrong
        assert health.json()["store"] == "store-unavailable"
        assert ready.status_code == 503 and int(ready.headers["Retry-After"]) >= 1
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == "urn:chartledger:problem:store-unavailable"
        assert "unavailable" in refused.json()["title"].lower()
        assert int(refused.headers["Retry-After"]) >= 1
        # Back: ready again once the pool has reconnected (it retries with backoff).
        give_up = time.monotonic() + 30
        while http.get("/health/ready").status_code != 200:
            assert time.monotonic() < give_up, "not ready 30 s after the database came back"
            time.sleep(0.2)
        assert http.get("/health").json()["store"] == "ok"
