"""When each session was last used, shared by every server of a practice on PostgreSQL, on
whichever host it runs: the ``session_clocks`` table (``events/session_clocks.py``).

A request must not cost a round trip for its clock. So a server writes what its requests saw
into memory, and a thread sends it every ``FLUSH_EVERY`` seconds, all sessions in one statement
(each session's latest time only, never moving a clock back). It reads the table only for the
timeout decision, and only when its own knowledge would not settle it: when the last use this
server knows of (or, for a session it never served, the session's start) is older than half
the timeout. A session used on another host within the timeout is then found alive; one used
nowhere is found idle. The clock a server reads can lag another's use by ``FLUSH_EVERY``
seconds, against a timeout of minutes.

SQLite keeps its clocks in a file in the practice home (``api/activity.py``): one host.
"""

from __future__ import annotations

import logging
import threading
import time
from uuid import UUID

from events.background import STORE_ERRORS
from events.db import Database
from events.session_clocks import FORGET, FORGET_IDLE, SEEN, UPSERT

log = logging.getLogger(__name__)
FLUSH_EVERY = 0.5  # seconds between a server's writes of its sessions' clocks
FORGET_EVERY = 300.0  # seconds between deletions of clocks gone idle


class SharedSessionClocks:
    """``get``, set and ``pop`` by session id (text), as ``api/activity.py``'s table."""

    def __init__(self, db: Database, idle_timeout: float) -> None:
        self._db = db
        self._timeout = idle_timeout
        self._known: dict[str, float] = {}  # what this server knows: its own uses, and reads
        self._pending: dict[str, float] = {}  # its uses not yet written
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._forgot = time.monotonic()
        self._thread: threading.Thread | None = None  # started by the first use

    def get(self, session: str, default: float) -> float:
        with self._lock:
            known = self._known.get(session)
        seen = default if known is None else known  # as api/activity.py: the default stands in
        if time.time() - seen <= self._timeout / 2:
            return seen  # settled here: clocks only move forward
        rows = self._db.query(SEEN, (UUID(session),))
        if rows:
            seen = max(seen, rows[0][0] / 1000)
            with self._lock:
                self._known[session] = max(self._known.get(session, 0.0), seen)
        return seen

    def __setitem__(self, session: str, seen: float) -> None:
        with self._lock:
            self._known[session] = max(self._known.get(session, 0.0), seen)
            self._pending[session] = max(self._pending.get(session, 0.0), seen)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._flush_loop, name="session-clocks", daemon=True
                )
                self._thread.start()

    def pop(self, session: str, default: float | None = None) -> float | None:
        with self._lock:
            known = self._known.pop(session, None)
            self._pending.pop(session, None)
        with self._db.write(lock=False) as c:
            c.execute(FORGET, (UUID(session),))
        return default if known is None else known

    def flush(self) -> None:
        """Write every clock moved since the last flush, in one statement."""
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return
        ids = [UUID(s) for s in pending]
        millis = [round(t * 1000) for t in pending.values()]
        try:
            with self._db.write(lock=False) as c:
                c.execute(UPSERT, (ids, millis))
        except BaseException:
            with self._lock:  # kept for the next flush, merged with what came since
                for session, seen in pending.items():
                    self._pending[session] = max(self._pending.get(session, 0.0), seen)
            raise

    def close(self) -> None:
        """Stop the thread and write what is left; again does nothing."""
        if self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join()
        try:
            self.flush()
        except STORE_ERRORS as e:
            log.warning("session clocks not written at close: %s", type(e).__name__)

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_EVERY):
            try:
                self.flush()
                self._forget_idle()
            except STORE_ERRORS as e:  # the store away: the next round tries again
                log.warning("session clocks not written: %s", type(e).__name__)

    def _forget_idle(self) -> None:
        """Drop clocks past the timeout, here and in the table: a missing clock reads as the
        session's start, which is older still, so the session stays idle."""
        if time.monotonic() - self._forgot < FORGET_EVERY:
            return
        self._forgot = time.monotonic()
        cutoff = time.time() - 2 * self._timeout
        with self._lock:
            for session in [s for s, t in self._known.items() if t < cutoff]:
                del self._known[session]
        with self._db.write(lock=False) as c:
            c.execute(FORGET_IDLE, (round(cutoff * 1000),))
