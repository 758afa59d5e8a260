"""How many refusals of tokens that name no session are written to the ledger.

A request without credentials is no access decision about anyone, and is not recorded. A
bearer token that names no session (malformed, unknown, or a session id with the wrong secret
is handled by the session itself: ``Session.refuse_request``) is refused and recorded as a
``TokenRefusal`` by client address, because nobody is known. An anonymous flood of garbage
tokens must not turn into a flood of ledger events, so each server process writes:

- at most one per client address per ``span`` (the first; the next one written from that
  address says how many were refused in between without being written: ``suppressed``), and
- at most ``limit`` per ``span`` in all, whatever the addresses (an attacker with many
  addresses gets ``limit`` rows a minute, not one per request).

So the ledger grows by at most ``limit × workers`` such events per span, and the audit view
still shows that, when and from where tokens were tried. The counts live in memory: a
restart forgets them, which only ever writes more, never less, than the bounds say.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

SPAN_SECONDS = 60.0
LIMIT_PER_SPAN = 60
ADDRESSES_KEPT = 4_096  # the oldest are forgotten first; a forgotten one is written again


class RefusalBudget:
    def __init__(
        self,
        span: float = SPAN_SECONDS,
        limit: int = LIMIT_PER_SPAN,
        addresses: int = ADDRESSES_KEPT,
    ) -> None:
        self._span, self._limit, self._kept = span, limit, addresses
        self._lock = threading.Lock()
        # address -> (when last written, refusals since not written)
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._window_start, self._written = float("-inf"), 0

    def admit(self, address: str, at: float) -> int | None:
        """None if this refusal from ``address`` at ``at`` (seconds) is not to be written;
        else how many from that address were refused, and not written, since the last one."""
        with self._lock:
            if at - self._window_start >= self._span:
                self._window_start, self._written = at, 0
            last = self._seen.get(address)
            if (last is not None and at - last[0] < self._span) or self._written >= self._limit:
                when, skipped = last if last is not None else (float("-inf"), 0)
                self._seen[address] = (when, skipped + 1)
                self._seen.move_to_end(address)
                self._forget()
                return None
            self._written += 1
            self._seen[address] = (at, 0)
            self._seen.move_to_end(address)
            self._forget()
            return 0 if last is None else last[1]

    def _forget(self) -> None:
        while len(self._seen) > self._kept:
            self._seen.popitem(last=False)
