"""Aggregates read on nearly every request (sessions, users, accounts), kept in memory and
brought up to date on every get.

A get asks the store for each aggregate's events newer than the copy it holds, all in one
statement, so a change committed by any process before the get began
(a revocation, say) is in what it returns. It takes no lock while it waits for the store:
threads reading the same user do not queue behind each other. The objects it returns are
shared: read them, never change them (copy first).

Never for patients' records, which must leave memory when they are disposed of.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from events.db import Database, Statement
from events.encoding import LedgerMapper

NEWER_EVENTS = (
    "SELECT {asked} AS asked, originator_version, topic, state FROM stored_events "
    "WHERE originator_id = ? AND originator_version > ?"
)


class HotAggregates:
    def __init__(self, db: Database, mapper: LedgerMapper, maxsize: int) -> None:
        self._db = db
        self._mapper = mapper
        self._maxsize = maxsize
        self._kept: OrderedDict[UUID, Any] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, aggregate_id: UUID) -> Any | None:
        """The copy held now, as it was when last brought up to date (None if none is held)."""
        with self._lock:
            return self._kept.get(aggregate_id)

    def get(self, *aggregate_ids: UUID) -> list[Any]:
        """Each aggregate as the store holds it now; ``AggregateNotFoundError`` if one has no
        events."""
        with self._lock:
            held = [self._kept.get(i) for i in aggregate_ids]
        found: list[list[tuple]] = [[] for _ in aggregate_ids]
        for asked, *row in self._db.query(*self._newer(aggregate_ids, held)):
            found[asked].append(row)
        return [
            self._brought_up(aggregate_id, aggregate, rows)
            for aggregate_id, aggregate, rows in zip(aggregate_ids, held, found, strict=True)
        ]

    def _newer(self, aggregate_ids: Sequence[UUID], held: Sequence[Any | None]) -> Statement:
        """One statement for every aggregate's newer events, each row led by the aggregate's
        place in the call (one statement costs less than a pipeline of one per aggregate)."""
        sql = " UNION ALL ".join(NEWER_EVENTS.format(asked=i) for i in range(len(held)))
        params: list[Any] = []
        for aggregate_id, aggregate in zip(aggregate_ids, held, strict=True):
            # eventsourcing keeps originator ids as 32 hex digits on SQLite, uuid on PostgreSQL.
            key = aggregate_id.hex if self._db.dialect == "sqlite" else aggregate_id
            params += [key, 0 if aggregate is None else aggregate.version]
        return sql + " ORDER BY asked, originator_version", params

    def _brought_up(self, aggregate_id: UUID, held: Any | None, rows: Sequence[tuple]) -> Any:
        if not rows:
            if held is None:
                raise AggregateNotFoundError(aggregate_id)
            self._keep(aggregate_id, held)
            return held
        # Another thread may be reading the held object: the new events go onto a copy.
        aggregate = None if held is None else copy.deepcopy(held)
        for _, topic, state in rows:
            aggregate = self._mapper.open_record(topic, state)[1].mutate(aggregate)
        if aggregate is None:  # the events ended it (none of the hot kinds does)
            raise AggregateNotFoundError(aggregate_id)
        self._keep(aggregate_id, aggregate)
        return aggregate

    def _keep(self, aggregate_id: UUID, aggregate: Any) -> None:
        with self._lock:
            kept = self._kept.get(aggregate_id)
            if kept is None or kept.version < aggregate.version:
                self._kept[aggregate_id] = aggregate  # never back to an older copy
            self._kept.move_to_end(aggregate_id)
            while len(self._kept) > self._maxsize:
                self._kept.popitem(last=False)
