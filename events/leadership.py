"""One leader at a time for a practice's background work (the views' follower, the checkpoint
signer, the hold notices' sender), however many server processes and hosts share its store.

SQLite (one host): an ``flock`` on ``<name>.lock`` in the practice home, as before; the kernel
drops it when the holder dies.

PostgreSQL (any number of hosts, each with its own copy of the home): a session advisory lock
in the store's schema, held on a connection of its own (not the pool's, which hands its
connections to requests). A holder that dies takes its lock with it: a SIGKILLed process's
socket is closed by its kernel at once, and the lock connection asks the server to probe it
every few seconds (``tcp_keepalives_*``), so a host that vanished from the network loses it
within ``KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT`` seconds. The holder asks its
connection every ``CHECK_EVERY`` seconds whether it is still there; when it is not (the
database restarted, the network failed), it steps down, and tries again for the lock like any
other process. Nothing here is PHI: a schema name and a loop's name.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg

from events.background import keep_running
from events.config import StoreConfig, parse_database_url
from events.private_files import private_dir

log = logging.getLogger(__name__)

# The advisory-lock space ("CHLD") of leaders; the key within it is the schema and the name.
LEADER_LOCK_SPACE = 0x43484C44
CHECK_EVERY = 1.0  # seconds between a leader's looks at its lock connection
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 3, 1, 3  # a dead host: about 6 s
CONNECT_TIMEOUT = 5
LOOKS_AGAIN = 2.0  # seconds between a waiting process's tries for the lock
LeaderWork = Callable[[threading.Event], None]  # runs until the event it is given is set


def lock_key(schema: str, name: str) -> tuple[int, str]:
    """The advisory lock's two halves: the space, and the text hashed into the second key."""
    return LEADER_LOCK_SPACE, f"{schema}/{name}"


class NotLeader(Exception):
    """Another process leads this loop now."""


class Candidate:
    """A process that may lead ``name``: on PostgreSQL it keeps one connection of its own,
    on which it tries for the lock every few seconds and, once it has it, holds it."""

    def __init__(self, config: StoreConfig, name: str) -> None:
        self._config = config
        self._name = name
        self._conn: psycopg.Connection | None = None

    @contextmanager
    def leading(self, stop: threading.Event) -> Iterator[threading.Event]:
        """Lead for the block, yielding an event set when leading must end (``stop`` set, or
        the lock lost); or raise ``NotLeader`` at once when another process leads."""
        if self._config.database_url is None:
            with _file_lock(self._config.home, self._name):
                yield stop
            return
        conn = self._connection()
        key = lock_key(parse_database_url(self._config.database_url).schema, self._name)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", key).fetchone()
        except psycopg.Error:
            self.close()
            raise
        if not (row and row[0]):
            raise NotLeader(self._name)
        step_down = threading.Event()
        watcher = threading.Thread(
            target=_watch, args=(conn, stop, step_down), name=f"leader:{self._name}", daemon=True
        )
        watcher.start()
        try:
            yield step_down
        finally:
            step_down.set()
            watcher.join()
            try:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
            except psycopg.Error:
                self.close()  # a lost connection holds no lock

    def close(self) -> None:
        if self._conn is not None:
            with suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            assert self._config.database_url is not None
            self._conn = _connect(self._config.database_url, self._name)
        return self._conn


def _connect(database_url: str, name: str) -> psycopg.Connection:
    pg = parse_database_url(database_url)
    conn = psycopg.connect(
        pg.conninfo(),
        autocommit=True,
        connect_timeout=CONNECT_TIMEOUT,
        application_name=f"chartledger leader {name} {os.getpid()}",  # who leads, for ops
        # The client's side: a leader whose database vanished notices at its next look.
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE,
        keepalives_interval=KEEPALIVE_INTERVAL,
        keepalives_count=KEEPALIVE_COUNT,
    )
    try:
        # The server's side: the lock of a host that vanished (no FIN, no RST) is freed once
        # these probes go unanswered, rather than after the kernel's two hours.
        conn.execute(
            f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE};"
            f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL};"
            f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}"
        )
    except psycopg.Error:
        conn.close()
        raise
    return conn


def _watch(conn: psycopg.Connection, stop: threading.Event, step_down: threading.Event) -> None:
    """Set ``step_down`` once ``stop`` is set (seen within ``CHECK_EVERY``) or the lock's
    connection fails; return at once when the leader sets it itself."""
    while not step_down.wait(CHECK_EVERY):
        if stop.is_set():
            break
        try:
            conn.execute("SELECT 1")
        except psycopg.Error as e:
            log.warning("leadership lost: %s", type(e).__name__)
            break
    step_down.set()


@contextmanager
def _file_lock(home: Path, name: str) -> Iterator[None]:
    private_dir(home)
    fd = os.open(home / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NotLeader(name) from None
        yield
    finally:
        os.close(fd)  # and with it the lock


def lead_when_chosen(
    config: StoreConfig,
    name: str,
    stop: threading.Event,
    work: LeaderWork,
    looks_again: float = LOOKS_AGAIN,
) -> None:
    """Until ``stop``: wait to lead ``name`` (one try every ``looks_again`` seconds), and while
    leading run ``work(step_down)``, which returns once ``step_down`` is set. A lock that
    cannot be tried (the database away, the home's disk full) is tried again, more slowly."""
    candidate = Candidate(config, name)

    def one_try() -> None:
        try:
            with candidate.leading(stop) as step_down:
                work(step_down)
        except NotLeader:
            return

    try:
        keep_running(f"{name}: waiting to lead", one_try, stop, looks_again, 60.0, at_once=True)
    finally:
        candidate.close()
