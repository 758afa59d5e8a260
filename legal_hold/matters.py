"""Matters: the lawsuit, claim or investigation that holds preserve records for.

A matter's events concern no patient or user (they are sealed under the practice's key), so they
stay readable after any patient's record is disposed of.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record
from domain.checks import identifier, moment, optional_text, text
from legal_hold.errors import InvalidHoldEntry, MatterStateError


def _checked(check, *args):  # type: ignore[no-untyped-def]
    """Run a domain.checks check, re-raising its failure as a legal-hold error."""
    try:
        return check(*args)
    except InvalidHoldEntry:
        raise
    except ValueError as e:
        raise InvalidHoldEntry(str(e)) from None


class Matter(Record):
    @classmethod
    def open(
        cls,
        *,
        name: str,
        number: str,
        forum: str | None,
        at: datetime,
        by: UUID,
    ) -> Matter:
        return cls(
            name=_checked(text, name, "name"),
            number=_checked(text, number, "number"),
            forum=_checked(optional_text, forum, "forum"),
            opened_at=_checked(moment, at, "at"),
            opened_by=_checked(identifier, by, "by"),
        )

    @event("Opened")
    def __init__(
        self, name: str, number: str, forum: str | None, opened_at: datetime, opened_by: UUID
    ) -> None:
        self.name = name
        self.number = number
        self.forum = forum
        self.opened_at = opened_at
        self.opened_by = opened_by
        self.closed_at: datetime | None = None
        self.closed_by: UUID | None = None
        self.close_reason: str | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def close(self, *, reason: str, at: datetime, by: UUID) -> None:
        """Close the matter; its holds must be released first (``holds.close_matter``)."""
        if not self.is_open:
            raise MatterStateError(f"matter {self.id} is already closed")
        at = _checked(moment, at, "at")
        if at < self.opened_at:
            raise InvalidHoldEntry("at is before the matter was opened")
        self._close(
            reason=_checked(text, reason, "reason"), closed_at=at, closed_by=identifier(by, "by")
        )

    @event("Closed")
    def _close(self, reason: str, closed_at: datetime, closed_by: UUID) -> None:
        self.closed_at = closed_at
        self.closed_by = closed_by
        self.close_reason = reason
