from __future__ import annotations

import hashlib
from uuid import uuid4

import pytest

from domain.base import patient_subject, user_subject
from domain.documents import Document
from domain.errors import ContentMismatch, InvalidEntry
from tests.unit.domain.memory import Memory, assert_round_trips, subjects

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n"


def store(content: bytes = PDF, **overrides: object) -> Document:
    fields: dict[str, object] = {
        "content": content,
        "sha256": hashlib.sha256(content).hexdigest(),
        "original_filename": "Referral letter (scan) 2024.pdf",
        "media_type": "application/pdf",
        "uploader_id": uuid4(),
        "patient_id": uuid4(),
        "source_created": "D:20240105083000-05'00'",
        "source_modified": None,
    }
    fields.update(overrides)
    return Document.store(**fields)  # type: ignore[arg-type]


def test_a_document_is_stored_byte_exact_with_its_metadata_as_received(memory: Memory) -> None:
    document = store()
    (again,) = assert_round_trips(memory, document)
    assert again.content == PDF and again.size == len(PDF)
    assert again.sha256 == hashlib.sha256(PDF).hexdigest()
    assert again.original_filename == "Referral letter (scan) 2024.pdf"
    assert again.source_created == "D:20240105083000-05'00'"
    assert subjects(memory, document) == {(patient_subject(document.patient_id),)}


def test_the_hash_must_be_the_contents_own() -> None:
    with pytest.raises(ContentMismatch, match="sha256 is not the SHA-256 of the content"):
        store(sha256=hashlib.sha256(b"other").hexdigest())
    with pytest.raises(ContentMismatch, match="size is not the length"):
        store(size=1)
    with pytest.raises(InvalidEntry, match="64 lowercase hexadecimal"):
        store(sha256=hashlib.sha256(PDF).hexdigest().upper())


def test_a_media_type_is_type_slash_subtype() -> None:
    with pytest.raises(InvalidEntry, match="media_type"):
        store(media_type="pdf")
    assert store(media_type="text/plain; charset=utf-8").media_type == "text/plain; charset=utf-8"


def test_a_document_without_a_patient_concerns_its_uploader(memory: Memory) -> None:
    document = store(patient_id=None)
    memory.save(document)
    assert subjects(memory, document) == {(user_subject(document.uploader_id),)}
