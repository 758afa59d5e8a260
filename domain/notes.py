"""Encounter notes: drafted, edited as a draft, signed once, then only amended by addenda.

The signed text never changes; an addendum adds text with its reason, author and time, and may
name the HIPAA amendment request it answers. A draft is its author's alone: only they edit or
sign it (``check_author``); anyone else adds to the chart in their own name (their own note, or
an addendum once it is signed).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import identifier, moment, optional_identifier
from domain.checks import text as _text
from domain.errors import NoteAlreadySigned, NoteNotSigned, NotPermitted


class Note(Record):
    @classmethod
    def draft(cls, *, patient_id: UUID, author_id: UUID, kind: str, text: str) -> Note:
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            author_id=identifier(author_id, "author_id"),
            kind=_text(kind, "kind"),
            text=_text(text, "text"),
        )

    @event("Drafted")
    def __init__(self, patient_id: UUID, author_id: UUID, kind: str, text: str) -> None:
        self.patient_id = patient_id
        self.author_id = author_id
        self.kind = kind
        self.text = text
        self.signed_by: UUID | None = None
        self.signed_at: datetime | None = None
        self.addenda: list[dict[str, Any]] = []

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    def check_author(self, user_id: UUID, what: str) -> None:
        """``NotPermitted`` unless ``user_id`` wrote the draft: a note keeps its author, so no
        one else may put words in it or sign it under that name."""
        if user_id != self.author_id:
            raise NotPermitted(
                f"only the author of note {self.id} may {what} it: add your own note instead"
            )

    def edit(self, text: str) -> None:
        """Replace a draft's text. A signed note raises ``NoteAlreadySigned``: amend it instead."""
        if self.is_signed:
            raise NoteAlreadySigned(f"note {self.id} is signed: add an addendum instead")
        self._edit(text=_text(text, "text"))

    @event("DraftEdited")
    def _edit(self, text: str) -> None:
        self.text = text

    def sign(self, *, signed_by: UUID, at: datetime) -> None:
        if self.is_signed:
            raise NoteAlreadySigned(f"note {self.id} is already signed")
        self._sign(signed_by=identifier(signed_by, "signed_by"), signed_at=moment(at, "at"))

    @event("Signed")
    def _sign(self, signed_by: UUID, signed_at: datetime) -> None:
        self.signed_by = signed_by
        self.signed_at = signed_at

    def add_addendum(
        self,
        *,
        text: str,
        reason: str,
        author_id: UUID,
        at: datetime,
        amendment_request_id: UUID | None = None,
        addendum_id: UUID | None = None,
    ) -> UUID:
        """Amend a signed note; returns the addendum's id. A draft raises ``NoteNotSigned``."""
        if not self.is_signed:
            raise NoteNotSigned(f"note {self.id} is a draft: edit it instead")
        new_id = uuid4() if addendum_id is None else identifier(addendum_id, "addendum_id")
        self._add_addendum(
            addendum_id=new_id,
            text=_text(text, "text"),
            reason=_text(reason, "reason"),
            author_id=identifier(author_id, "author_id"),
            at=moment(at, "at"),
            amendment_request_id=optional_identifier(amendment_request_id, "amendment_request_id"),
        )
        return new_id

    @event("AddendumAdded")
    def _add_addendum(
        self,
        addendum_id: UUID,
        text: str,
        reason: str,
        author_id: UUID,
        at: datetime,
        amendment_request_id: UUID | None,
    ) -> None:
        self.addenda.append(
            {
                "addendum_id": addendum_id,
                "text": text,
                "reason": reason,
                "author_id": author_id,
                "at": at,
                "amendment_request_id": amendment_request_id,
            }
        )
