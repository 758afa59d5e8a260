"""A production as a ledger event: who produced what to whom, when, and the bundle's hash
(the chain of custody).

Like a hold's events, a production concerns the acting risk manager only, never the patients it
produced: sealed under a patient's key, the record of the production would become unreadable the
day that patient's record is disposed of.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject


class Production(Record):
    @staticmethod
    def create_id(production_id: UUID) -> UUID:
        # Chosen before the bundle is written, so the bundle's file can be named by it.
        return production_id

    @event("Produced")
    def __init__(
        self,
        production_id: UUID,
        matter_id: UUID,
        produced_at: datetime,
        produced_by: UUID,
        bundle_name: str,
        bundle_sha256: str,
        bundle_size: int,
        checkpoint_size: int,
        checkpoint_root: str,
        since_size: int | None,
        holds: list[UUID],
        produced_subjects: list[str],  # not "subjects": Record sets that on every event
        event_count: int,
        withheld: list[list[Any]],
    ) -> None:
        self.matter_id = matter_id
        self.produced_at = produced_at
        self.produced_by = produced_by
        self.bundle_name = bundle_name
        self.bundle_sha256 = bundle_sha256
        self.bundle_size = bundle_size
        self.checkpoint_size = checkpoint_size
        self.checkpoint_root = checkpoint_root
        self.since_size = since_size
        self.holds = holds
        self.produced_subjects = produced_subjects
        self.event_count = event_count
        self.withheld = withheld

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.produced_by),)
