"""Notices the wall clock stepping backwards between two events recorded by one process.

Recorded times are evidence (DESIGN.md rule 5) and are kept exactly as the clock gave them, so
a clock stepped back shows as an event recorded "before" the one ahead of it in the log. This
says so where an operator looks: one WARNING line naming the size of the step, logged as the
first event after it is recorded (docs/LEDGER_FORMAT.md, "Recorded times and a clock that
steps back").

A step is seen as a drop in (wall clock - monotonic clock): the monotonic clock never steps,
so only the wall clock can have moved; the order in which threads happen to record their events
plays no part (which comparing recorded times would confuse with a step), and NTP's slewing,
a few milliseconds a second, stays under ``TOLERANCE``."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger("chartledger.clock")

TOLERANCE = 1.0  # seconds: smaller drops are slewing or jitter, not a step


class ClockWatch:
    def __init__(self, tolerance: float = TOLERANCE) -> None:
        self.tolerance = tolerance
        self._lock = threading.Lock()
        self._offset: float | None = None  # wall - monotonic, as last seen

    def check(self, recorded: str) -> float | None:
        """Call as an event is recorded at ``recorded`` (its timestamp text): the seconds the
        clock went back since the last call, logged, or None."""
        offset = time.time() - time.monotonic()
        with self._lock:
            last, self._offset = self._offset, offset
        if last is None or last - offset <= self.tolerance:
            return None
        back = last - offset
        log.warning(
            "clock stepped back by %.1f s: events recorded from %s on carry the stepped "
            "clock's times (kept as given, DESIGN rule 5)",
            back,
            recorded,
        )
        return back
