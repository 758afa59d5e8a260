"""The import summary: one event per import that wrote anything, for the audit trail.

It names the kind of import, the file's SHA-256, what was counted, accepted and rejected (the
rejections' locations and rules, never values), whether valid items were written alone, every
record created (once: a lab result under its message's link), and for lab messages which
Document holds each message's original. It concerns the importing user only, like every
administrative act: the records it lists carry their patients themselves.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import choice, identifier, text

KINDS = ("patients", "labs", "email", "sms", "fhir")


class ImportRun(Record):
    class Completed(Record.Created):
        """Version 2 lists a record once: ``created`` leaves out the lab results a link names
        (``links[].lab_ids``), which version 1 listed twice (for a 20,000-result message,
        1.1 MB of ids twice over). Version 1, read, is upcast by leaving them out."""

        class_version = 2

        kind: str
        source_name: str
        source_sha256: str
        items: int
        accepted: int
        rejected: int
        rejections: list[str]
        created: list[UUID]
        accept_valid: bool
        by: UUID
        links: list[dict[str, Any]]

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["created"] = _unlinked(state["created"], state["links"])

    @classmethod
    def complete(
        cls,
        *,
        kind: str,
        source_name: str,
        source_sha256: str,
        items: int,
        rejections: Sequence[str],
        created: Sequence[UUID],
        accept_valid: bool,
        by: UUID,
        links: Sequence[dict[str, Any]] = (),
    ) -> ImportRun:
        return cls(
            kind=choice(kind, "kind", KINDS),
            source_name=text(source_name, "source_name"),
            source_sha256=text(source_sha256, "source_sha256"),
            items=items,
            accepted=items - len(rejections),
            rejected=len(rejections),
            rejections=[text(r, "rejections") for r in rejections],
            created=_unlinked([identifier(c, "created") for c in created], links),
            accept_valid=bool(accept_valid),
            by=identifier(by, "by"),
            links=[dict(link) for link in links],
        )

    @event(Completed)
    def __init__(
        self,
        kind: str,
        source_name: str,
        source_sha256: str,
        items: int,
        accepted: int,
        rejected: int,
        rejections: list[str],
        created: list[UUID],
        accept_valid: bool,
        by: UUID,
        links: list[dict[str, Any]],
    ) -> None:
        self.kind = kind
        self.source_name = source_name
        self.source_sha256 = source_sha256
        self.items = items
        self.accepted = accepted
        self.rejected = rejected
        self.rejections = list(rejections)
        self.created = list(created)
        self.accept_valid = accept_valid
        self.by = by
        self.links = [dict(link) for link in links]

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.by),)

    @property
    def all_created(self) -> list[UUID]:
        """Every record the import created: ``created`` and the lab results its links name."""
        return self.created + [i for link in self.links for i in link.get("lab_ids", ())]


def _unlinked(created: list[UUID], links: Sequence[dict[str, Any]]) -> list[UUID]:
    """``created`` without the ids a link lists already."""
    linked = {i for link in links for i in link.get("lab_ids", ())}
    return [c for c in created if c not in linked]
