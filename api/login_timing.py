"""A refused login for a username that does not exist takes as long as one for a username that
does, so the time of the answer does not tell which usernames exist.

The unknown path does the known path's work where it can: the same reads, and a full password
hash at ``Settings.pbkdf2_iterations`` (``api/auth.py``). The one thing it cannot do is append
the ``LoginFailed`` event (there is no account to append it to, and the log is not to be filled
with made-up usernames), so it waits instead as long as this process's recent appends of one
took (``RecentWrites``): the known path's cost, measured, rather than a guess that a busy or a
PostgreSQL store would prove wrong.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

SMOOTHING = 0.2  # weight of the latest append in the running estimate


class RecentWrites:
    """A running (exponentially weighted) mean of how long recording a failure took."""

    def __init__(self) -> None:
        self._seconds: float | None = None
        self._lock = threading.Lock()

    @contextmanager
    def timed(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        took = time.perf_counter() - started
        with self._lock:
            known = self._seconds
            self._seconds = took if known is None else known + SMOOTHING * (took - known)

    def wait_as_long(self) -> None:
        """Spend what recording a failure has lately cost (nothing before the first)."""
        with self._lock:
            seconds = self._seconds
        if seconds:
            time.sleep(seconds)


FAILURE_WRITES = RecentWrites()
