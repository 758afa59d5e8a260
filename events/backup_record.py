"""A backup is an act on the practice's records, so it is recorded in the log it copies.

``Backups.Taken`` is appended first and the backup then copies the log up to and including
it, so the backup holds the record of its own making (docs/BACKUP_FORMAT.md §8).
"""

from __future__ import annotations

import uuid

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate, event

from events.ledger import Ledger


class Backups(Aggregate):
    """The practice's backups, as the log sees them: one stream per practice."""

    @staticmethod
    def create_id(origin: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, origin + "/backups")

    @event("Started")
    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.taken: list[str] = []

    @event("Taken")
    def taken_by(self, subjects: tuple[str, ...], backup_id: str, format_version: int) -> None:
        self.taken.append(backup_id)


def record_backup(
    ledger: Ledger, backup_id: str, format_version: int, by: str | None = None
) -> int:
    """Append ``Backups.Taken`` (about ``by``, a ``user:<id>`` subject, if given); return its
    position."""
    stream = Backups.create_id(ledger.origin)
    try:
        backups = ledger.repository.get(stream)
    except AggregateNotFoundError:
        backups = Backups(origin=ledger.origin)
    backups.taken_by(
        subjects=(by,) if by else (), backup_id=backup_id, format_version=format_version
    )
    positions: list[int] = []
    ledger.save(backups, after_append=lambda _cursor, appended: positions.extend(appended))
    return positions[-1]
