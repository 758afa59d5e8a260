"""A refused login for a username that does not exist takes as long as one for a username that
does, so the time of the answer does not tell which usernames exist.

The unknown path does the known path's work where it can: the throttle's count, the same reads
and a full password hash at ``Settings.pbkdf2_iterations`` (``api/auth.py``). What it cannot do
is bring the account up to date and append its ``LoginFailed`` event (there is no account, and
the log is not to be filled with made-up usernames). So it waits instead for as long as that
other work (everything but the hash) typically takes this process when it refuses a known
username: the median of the latest ones, measured where they run, rather than a guess that a
busy machine or a PostgreSQL store would prove wrong. (A median, not a mean: one slow append
would otherwise slow every answer for an unknown name after it, and show.)
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque

SAMPLES = 31  # the latest refusals of known usernames whose median is waited for


class BesidesTheHash:
    """How long refusing a known username takes besides checking the password, lately."""

    def __init__(self) -> None:
        self._seconds: deque[float] = deque(maxlen=SAMPLES)
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        with self._lock:
            self._seconds.append(seconds)

    def wait_out(self, spent: float) -> None:
        """Sleep for what the known path's work besides the hash lately takes, less the
        ``spent`` seconds of it the unknown path did (no wait before the first measure)."""
        with self._lock:
            typical = statistics.median(self._seconds) if self._seconds else 0.0
        if typical > spent:
            time.sleep(typical - spent)


KNOWN_FAILURES = BesidesTheHash()
