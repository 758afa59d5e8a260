"""Login throttling, kept where every server process sees it: who may try now, from where.

The rule is ``domain/throttle.py``; this module keeps the failure counts it reads in a small
SQLite file under ``CHARTLEDGER_HOME`` (``login-throttle``, mode 0600), beside the sessions'
idle clocks, rather than deriving them from the ledger's ``LoginFailed`` events, because:

- a username that does not exist must be throttled exactly as one that does, or the 429s would
  tell which usernames exist; it has no account in the ledger to hold its failures (and writing
  ledger events for made-up usernames would let anyone grow the append-only log);
- an attempt is counted *before* its password is checked, in one write transaction, so a burst
  of concurrent attempts from one address cannot all slip past the check while the first is
  still hashing; a success then clears what it counted;
- a refused (throttled) attempt writes nothing to the ledger, and costs one indexed read.

The ledger still records every attempt that was checked (``LoginFailed`` with the client
address, ``LockedOut``, ``LoggedIn``): the file is the enforcement, the ledger the evidence.
The file holds no PHI and no usernames: account ids (derived from usernames), client addresses,
counts and times. Rows quiet for ``ThrottlePolicy.forget_after`` are dropped as it is written.

Client addresses are the TCP peer's (``request.client.host``). ``X-Forwarded-For`` is believed
only from a peer named in ``Settings.trusted_proxies`` (``CHARTLEDGER_TRUSTED_PROXIES``); IPv6
addresses are throttled by their /64, which one host usually holds whole.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from fastapi import Request

from api.errors import TooManyAttempts
from domain.throttle import (
    ACCOUNT_LOCK_FAILURES,
    PairFailures,
    ThrottlePolicy,
    account_locked,
    after_failure,
    retry_after,
)
from events.private_files import touch_private

KNOWN_ADDRESSES = 32  # addresses kept per account that it logged in from, the latest first
UNKNOWN_CLIENT = "unknown"
SCHEMA = """
CREATE TABLE IF NOT EXISTS pair_failures (
    account TEXT NOT NULL, address TEXT NOT NULL, failures INTEGER NOT NULL,
    last_at REAL NOT NULL, PRIMARY KEY (account, address)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pair_failures_last_at ON pair_failures (last_at);
CREATE TABLE IF NOT EXISTS account_failures (
    account TEXT PRIMARY KEY, failures INTEGER NOT NULL, last_at REAL NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS account_failures_last_at ON account_failures (last_at);
CREATE TABLE IF NOT EXISTS known_addresses (
    account TEXT NOT NULL, address TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (account, address)) WITHOUT ROWID;
"""


def address_key(address: str) -> str:
    """What an address is throttled by: an IPv4 address, an IPv6 address's /64 (an IPv4-mapped
    one as its IPv4 address), anything else (a test client's name) as it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def client_address(request: Request, trusted_proxies: tuple[str, ...]) -> str:
    """The address the request came from: the TCP peer, or, when the peer is a trusted proxy,
    the nearest address in ``X-Forwarded-For`` that is not one (proxies append on the right)."""
    peer = request.client.host[:64] if request.client is not None else UNKNOWN_CLIENT
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    forwarded = ",".join(request.headers.getlist("x-forwarded-for"))
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # a hop we cannot read: the proxy's own address is all we know
        if not _trusted(hop, trusted_proxies):
            return hop
    return peer


def _trusted(address: str, trusted_proxies: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in trusted_proxies)


@dataclass(frozen=True)
class Admission:
    """An attempt let through, already counted as a failure (pair and account) until
    ``LoginThrottle.succeeded`` says otherwise."""

    account: str
    address: str
    pair: PairFailures
    account_failures: int
    address_known: bool
    policy: ThrottlePolicy

    def refusal(self, at: datetime) -> TooManyAttempts | None:
        """If the attempt failed: the 429 to answer when it leaves the pair waiting or the
        account locked to this address; else None (answer 401)."""
        wait = retry_after(self.pair, at, self.policy)
        if wait:
            return TooManyAttempts("too many failed attempts", retry_after=wait)
        if account_locked(self.account_failures, self.address_known):
            return _locked(self.policy)
        return None


def _locked(policy: ThrottlePolicy) -> TooManyAttempts:
    # No end in sight but a success elsewhere or a recovery: suggest the longest pair wait.
    return TooManyAttempts(
        "too many failed attempts", retry_after=int(policy.max_delay.total_seconds())
    )


class LoginThrottle:
    """The counts behind ``domain/throttle.py``'s rule, shared by the server's processes."""

    def __init__(self, path: Path, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self._path = path
        self._db: sqlite3.Connection | None = None
        self._threads = threading.Lock()
        with self._transaction():
            pass  # made, and its tables, now: a bad CHARTLEDGER_HOME stops the server at once

    def close(self) -> None:
        """Close the file; used again, it opens again (an app's lifespan may run twice)."""
        with self._threads:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _open(self) -> sqlite3.Connection:
        touch_private(self._path)  # 0600 before SQLite opens it: its -wal/-shm take its mode
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        return db

    def admit(self, account_id: UUID, address: str, at: datetime) -> Admission:
        """Let the attempt through and count it as a failure, or refuse it (``TooManyAttempts``,
        nothing counted) while its pair waits or the account is locked to its address."""
        account, key = str(account_id), address_key(address)
        with self._transaction() as c:
            self._forget(c, at)
            row = c.execute(
                "SELECT failures, last_at FROM pair_failures WHERE account = ? AND address = ?",
                (account, key),
            ).fetchone()
            pair = PairFailures() if row is None else PairFailures(row[0], _time(row[1]))
            wait = retry_after(pair, at, self.policy)
            if wait:
                raise TooManyAttempts("too many failed attempts", retry_after=wait)
            row = c.execute(
                "SELECT failures FROM account_failures WHERE account = ?", (account,)
            ).fetchone()
            failures = 0 if row is None else int(row[0])
            known = (
                c.execute(
                    "SELECT 1 FROM known_addresses WHERE account = ? AND address = ?",
                    (account, key),
                ).fetchone()
                is not None
            )
            if account_locked(failures, known):
                raise _locked(self.policy)
            pair = after_failure(pair, at, self.policy)
            c.execute(
                "INSERT INTO pair_failures (account, address, failures, last_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (account, address) "
                "DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at",
                (account, key, pair.count, at.timestamp()),
            )
            c.execute(
                "INSERT INTO account_failures (account, failures, last_at) VALUES (?, 1, ?) "
                "ON CONFLICT (account) DO UPDATE SET failures = account_failures.failures + 1, "
                "last_at = excluded.last_at",
                (account, at.timestamp()),
            )
        return Admission(account, key, pair, failures + 1, known, self.policy)

    def succeeded(self, account_id: UUID, address: str, at: datetime) -> None:
        """A login (or a recovery) from ``address`` succeeded: its pair's failures and the
        account's failures in a row are cleared (which lifts a lock), and the address is one
        the account logged in from."""
        account, key = str(account_id), address_key(address)
        with self._transaction() as c:
            c.execute("DELETE FROM pair_failures WHERE account = ? AND address = ?", (account, key))
            c.execute("DELETE FROM account_failures WHERE account = ?", (account,))
            c.execute(
                "INSERT INTO known_addresses (account, address, at) VALUES (?, ?, ?) "
                "ON CONFLICT (account, address) DO UPDATE SET at = excluded.at",
                (account, key, at.timestamp()),
            )
            c.execute(
                "DELETE FROM known_addresses WHERE account = ? AND address NOT IN "
                "(SELECT address FROM known_addresses WHERE account = ? ORDER BY at DESC LIMIT ?)",
                (account, account, KNOWN_ADDRESSES),
            )

    def lift(self, account_id: UUID) -> None:
        """Clear the account's failures in a row (so any lock), as when its password is set
        anew by someone entitled to: the next attempt from anywhere starts from nothing."""
        with self._transaction() as c:
            c.execute("DELETE FROM account_failures WHERE account = ?", (str(account_id),))

    def _forget(self, c: sqlite3.Connection, at: datetime) -> None:
        """Drop what no longer counts: quiet pairs, and quiet accounts short of a lock (a lock
        stays until a success or a recovery lifts it)."""
        before = (at - self.policy.forget_after).timestamp()
        c.execute("DELETE FROM pair_failures WHERE last_at < ?", (before,))
        c.execute(
            "DELETE FROM account_failures WHERE last_at < ? AND failures < ?",
            (before, ACCOUNT_LOCK_FAILURES),
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._threads:
            if self._db is None:
                self._db = self._open()
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
