"""Appends from many threads shared into one transaction: one writer lock and one commit (one
fsync) for every caller waiting, instead of one each.

Each caller maps its own events in its own thread, so every header names that caller's actor
and session (``events.context``); then whoever finds the writer free appends everything that is
waiting, and each caller returns only once its own events are committed, or raises what the
append raised. Meant for small, independent appends that cannot conflict, such as the access
event every read of PHI records before it answers.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import StoredEvent

from events.store import StaleDataKey


@dataclass
class _Waiting:
    stored: list[StoredEvent]
    done: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None


class GroupCommit:
    def __init__(self, ledger: Any) -> None:
        self._ledger = ledger
        self._queue: list[_Waiting] = []
        self._queue_lock = threading.Lock()
        self._writer = threading.Lock()

    def save(self, *aggregates: Any) -> None:
        """Append the aggregates' pending events, in one transaction with whatever else waits."""
        events = [event for aggregate in aggregates for event in aggregate.collect_events()]
        if not events:
            return
        for attempt in (1, 2):
            mine = _Waiting([self._ledger.mapper.to_stored_event(e) for e in events])
            with self._queue_lock:
                self._queue.append(mine)
            with self._writer:
                if not mine.done.is_set():
                    with self._queue_lock:
                        batch, self._queue = self._queue, []
                    self._append(batch)
            if mine.error is None:
                return
            if isinstance(mine.error, StaleDataKey) and attempt == 1:
                # Disposed of by another process since this one cached the key: nothing was
                # written, so seal again under the owner's new key (as Ledger._record does).
                for name in mine.error.names:
                    self._ledger.data_keys.forget(name)
                continue
            raise mine.error

    def _append(self, batch: Sequence[_Waiting]) -> None:
        stored = [event for waiting in batch for event in waiting.stored]
        signed: list[int] = []
        try:
            with self._ledger.checkpoint_when_due(signed):
                hook = self._ledger.checkpoint_hook(signed)
                self._ledger.recorder.insert_events(stored, after_append=hook)
        except Exception as error:  # every caller in the batch raises it, in its own thread
            for waiting in batch:
                waiting.error = error
        for waiting in batch:
            waiting.done.set()
