"""The login throttle of servers on several hosts sharing one PostgreSQL store: the same rule
and statements as ``api/throttle.py``, on tables in the store (``events/throttle_tables.py``)
instead of a file in each host's home, so an attacker spread over the hosts by the proxy gets no
more attempts than against one.

Each attempt's transaction first takes one transaction-level advisory lock of the practice's,
as SQLite's ``BEGIN IMMEDIATE`` serialises the file's writers: a burst of attempts from one
address on several hosts cannot all read the count before any has written it. A login is rare
next to the requests; the lock is held for a few statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from api.throttle import LoginThrottle
from domain.throttle import ThrottlePolicy
from events.db import Database

# The advisory-lock space ("CHLT") of the throttle's transactions; the key is the schema.
THROTTLE_LOCK_SPACE = 0x43484C54


class SharedLoginThrottle(LoginThrottle):
    def __init__(self, db: Database, policy: ThrottlePolicy) -> None:
        self.policy = policy
        self._store = db

    def close(self) -> None:
        """Nothing of its own to close: the store's connections are the ledger's."""

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._store.write(lock=False) as c:
            c.execute(
                "SELECT pg_advisory_xact_lock(?, hashtext(?))",
                (THROTTLE_LOCK_SPACE, self._store.schema),
            )
            yield c
