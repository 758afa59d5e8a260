"""The practice: the owner of every record in its ledger."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event


class Practice(Aggregate):
    @staticmethod
    def create_id(practice_id: UUID, name: str) -> UUID:
        return practice_id

    @event("Created")
    def __init__(self, practice_id: UUID, name: str) -> None:
        self.name = name
