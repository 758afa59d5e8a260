"""A read-only PostgreSQL replica of the store, for the queries that read much and write
nothing: the audit view, a patient's access report and accounting of disclosures.

A streaming replica lags its primary. A report must still show every event committed before
it was asked (its own reading among them), so the replica serves a view only once it has
applied that view as far as the primary has; it is waited for up to ``WAIT_AT_MOST`` seconds,
then the primary answers instead. A replica that fails (away, refusing) is logged by the
exception's type and the primary answers, alone for ``RETRY_AFTER`` seconds: a report never
fails because of its replica, and waits for one that is away once in a while only.
"""

from __future__ import annotations

import logging
import time

from eventsourcing.postgres import PostgresDatastore

from events.background import STORE_ERRORS
from events.config import parse_database_url
from events.db import Database

log = logging.getLogger(__name__)
WAIT_AT_MOST = 1.0  # seconds a report waits for the replica to catch up with the primary
CONNECT_TIMEOUT = 2  # seconds; the pool connects on first use, not at start
RETRY_AFTER = 30.0  # seconds the primary answers alone after the replica failed
LOOK_EVERY = 0.05
POSITION = "SELECT position FROM projection_positions WHERE name = ?"


class Replica:
    def __init__(
        self,
        url: str,
        pool_size: int = 4,
        connect_timeout: float = CONNECT_TIMEOUT,
        wait_at_most: float = WAIT_AT_MOST,
    ) -> None:
        self._wait_at_most = wait_at_most
        pg = parse_database_url(url)
        self.db = Database(
            PostgresDatastore(
                pg.dbname,
                pg.host,
                pg.port,
                pg.user,
                pg.password,
                schema=pg.schema,
                connect_timeout=connect_timeout,
                pool_size=pool_size,
                max_overflow=pool_size,
            )
        )
        self._failed_at: float | None = None  # when the replica last failed (monotonic)

    def db_for(self, primary: Database, view: str) -> Database:
        """The replica, once it has applied ``view`` as far as the primary has now; else
        the primary."""
        if self._failed_at is not None and time.monotonic() - self._failed_at < RETRY_AFTER:
            return primary
        target = _position(primary, view)
        if target is None:
            return primary
        deadline = time.monotonic() + self._wait_at_most
        try:
            while True:
                reached = _position(self.db, view)
                if reached is not None and reached >= target:
                    return self.db
                if time.monotonic() >= deadline:
                    log.info("replica behind the primary on %s: the primary answers", view)
                    return primary
                time.sleep(LOOK_EVERY)
        except STORE_ERRORS as e:
            self._failed_at = time.monotonic()
            log.warning("replica unavailable: %s; the primary answers", type(e).__name__)
            return primary

    def close(self) -> None:
        self.db.datastore.close()


def _position(db: Database, view: str) -> int | None:
    rows = db.query(POSITION, (view,))
    return None if not rows else int(rows[0][0])
