"""Documents, stored by the SHA-256 of their content with their metadata as received."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import identifier, optional_identifier, optional_text, raw_bytes, text
from domain.errors import ContentMismatch, InvalidEntry

SHA256_HEX = re.compile(r"[0-9a-f]{64}", re.ASCII)
# Spelt so the API's schema can state it as is (ECMA-262 has no flags: no \s shorthand, no ".").
MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+(?:[ \t\n\r\f\v]*;[\s\S]*)?")


class Document(Record):
    @classmethod
    def store(
        cls,
        *,
        content: bytes,
        sha256: str,
        original_filename: str,
        media_type: str,
        uploader_id: UUID,
        patient_id: UUID | None = None,
        size: int | None = None,
        source_created: str | None = None,
        source_modified: str | None = None,
        id: UUID | None = None,
    ) -> Document:
        """Store ``content``; ``sha256`` (and ``size``, if given) must be the content's own.
        ``id`` is given when the document's id must be the same each time its source is read;
        else a new one is drawn."""
        raw_bytes(content, "content")
        if type(sha256) is not str or SHA256_HEX.fullmatch(sha256) is None:
            raise InvalidEntry("sha256 must be 64 lowercase hexadecimal digits")
        if hashlib.sha256(content).hexdigest() != sha256:
            raise ContentMismatch("sha256 is not the SHA-256 of the content")
        if size is not None and size != len(content):
            raise ContentMismatch("size is not the length of the content")
        if type(media_type) is not str or MEDIA_TYPE.fullmatch(media_type) is None:
            raise InvalidEntry("media_type must be a type/subtype media type")
        return cls._create(
            cls.Stored,
            id=None if id is None else identifier(id, "id"),
            patient_id=optional_identifier(patient_id, "patient_id"),
            sha256=sha256,
            size=len(content),
            content=content,
            original_filename=text(original_filename, "original_filename"),
            media_type=media_type,
            source_created=optional_text(source_created, "source_created"),
            source_modified=optional_text(source_modified, "source_modified"),
            uploader_id=identifier(uploader_id, "uploader_id"),
        )

    @event("Stored")
    def __init__(
        self,
        patient_id: UUID | None,
        sha256: str,
        size: int,
        content: bytes,
        original_filename: str,
        media_type: str,
        source_created: str | None,
        source_modified: str | None,
        uploader_id: UUID,
    ) -> None:
        self.patient_id = patient_id
        self.sha256 = sha256
        self.size = size
        self.content = content
        self.original_filename = original_filename
        self.media_type = media_type
        self.source_created = source_created
        self.source_modified = source_modified
        self.uploader_id = uploader_id

    def ledger_subjects(self) -> Iterable[str]:
        if self.patient_id is not None:
            return (patient_subject(self.patient_id),)
        return (user_subject(self.uploader_id),)
