"""In-memory persistence with the ledger's own canonical transcoder, so a save refuses what the
ledger would refuse (floats, naive datetimes) and a replay decodes what the ledger would decode."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Transcoder

from events.encoding import CanonicalTranscoder

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


class Memory(Application):
    def construct_transcoder(self) -> Transcoder:
        return CanonicalTranscoder()

    def round_trip(self, *aggregates: Any) -> list[Any]:
        """Save, then load each aggregate again from its events."""
        self.save(*aggregates)
        return [self.repository.get(a.id) for a in aggregates]

    def stored(self, aggregate_id: Any) -> list[Any]:
        """The aggregate's events as decoded from the store."""
        return list(self.repository.event_store.get(aggregate_id))


def subjects(memory: Memory, aggregate: Any) -> set[tuple[str, ...]]:
    """The distinct ``subjects`` stamped on an aggregate's saved events."""
    return {e.subjects for e in memory.stored(aggregate.id)}


def new_memory() -> Memory:
    return Memory(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def state(aggregate: Any) -> dict[str, Any]:
    """An aggregate's state without the library's bookkeeping of unsaved events."""
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def assert_round_trips(memory: Memory, *aggregates: Any) -> list[Any]:
    """Saved and replayed, each aggregate comes back in the same state."""
    before = [state(a) for a in aggregates]
    after = memory.round_trip(*aggregates)
    assert [state(a) for a in after] == before
    return after
