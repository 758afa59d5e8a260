from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.base import patient_subject
from domain.errors import InvalidEntry, NoteAlreadySigned, NoteNotSigned
from domain.notes import Note
from tests.unit.domain.memory import AT, Memory, assert_round_trips

ORIGINAL = "Subjective: cough for three days."


def signed_note() -> Note:
    note = Note.draft(patient_id=uuid4(), author_id=uuid4(), kind="progress", text=ORIGINAL)
    note.sign(signed_by=note.author_id, at=AT)
    return note


def test_a_draft_can_be_edited_before_signing() -> None:
    note = Note.draft(patient_id=uuid4(), author_id=uuid4(), kind="progress", text="draft")
    note.edit("second draft")
    assert note.text == "second draft" and not note.is_signed
    assert [type(e).__name__ for e in note.collect_events()] == ["Drafted", "DraftEdited"]


def test_a_signed_note_can_only_be_amended() -> None:
    note = signed_note()
    with pytest.raises(NoteAlreadySigned, match=rf"^note {note.id} is signed: add an addendum"):
        note.edit("rewritten history")
    assert note.text == ORIGINAL
    addendum_id = note.add_addendum(
        text="Correction: five days.", reason="history clarified", author_id=uuid4(), at=AT
    )
    assert note.text == ORIGINAL
    assert [a["addendum_id"] for a in note.addenda] == [addendum_id]
    assert note.addenda[0]["reason"] == "history clarified"


def test_the_error_for_editing_a_signed_note_names_no_text() -> None:
    note = signed_note()
    with pytest.raises(NoteAlreadySigned) as e:
        note.edit("secret")
    assert "secret" not in str(e.value) and "cough" not in str(e.value)


def test_a_note_is_signed_once() -> None:
    note = signed_note()
    with pytest.raises(NoteAlreadySigned, match="already signed"):
        note.sign(signed_by=uuid4(), at=AT + timedelta(hours=1))
    assert note.signed_at == AT


def test_a_draft_cannot_take_an_addendum() -> None:
    note = Note.draft(patient_id=uuid4(), author_id=uuid4(), kind="progress", text="draft")
    with pytest.raises(NoteNotSigned, match="is a draft: edit it instead"):
        note.add_addendum(text="x", reason="y", author_id=uuid4(), at=AT)


def test_an_addendum_needs_a_reason() -> None:
    with pytest.raises(InvalidEntry, match=r"^reason must be non-empty text$"):
        signed_note().add_addendum(text="x", reason=" ", author_id=uuid4(), at=AT)


def test_signing_takes_an_aware_time() -> None:
    note = Note.draft(patient_id=uuid4(), author_id=uuid4(), kind="progress", text="draft")
    with pytest.raises(InvalidEntry, match="timezone-aware"):
        note.sign(signed_by=uuid4(), at=AT.replace(tzinfo=None))


def test_an_addendum_may_name_the_amendment_request_it_answers() -> None:
    request_id = uuid4()
    note = signed_note()
    note.add_addendum(
        text="x", reason="y", author_id=uuid4(), at=AT, amendment_request_id=request_id
    )
    assert note.addenda[0]["amendment_request_id"] == request_id


def test_every_note_event_concerns_its_patient(memory: Memory) -> None:
    note = signed_note()
    note.add_addendum(text="x", reason="y", author_id=uuid4(), at=AT)
    events = note.collect_events()
    assert {e.subjects for e in events} == {(patient_subject(note.patient_id),)}


def test_a_signed_and_amended_note_replays_to_the_same_state(memory: Memory) -> None:
    note = signed_note()
    note.add_addendum(text="x", reason="y", author_id=uuid4(), at=AT)
    (again,) = assert_round_trips(memory, note)
    assert again.text == ORIGINAL and again.is_signed
    with pytest.raises(NoteAlreadySigned):
        again.edit("after replay")
