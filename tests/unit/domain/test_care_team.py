"""Care-team assignments and the registered provider: nobody puts themselves in a patient's
care, and each round-trips through the store with the subjects it concerns."""

from __future__ import annotations

from uuid import uuid4

import pytest

from domain.base import patient_subject, user_subject
from domain.care_team import CareAssignment, RegisteredProvider, care_assignment_id
from domain.errors import EntryStateError, NotPermitted
from domain.notes import Note
from tests.unit.domain.memory import AT, assert_round_trips, new_memory, subjects


def test_nobody_assigns_themselves_or_names_themselves_registered_provider() -> None:
    patient, clinician = uuid4(), uuid4()
    with pytest.raises(NotPermitted):
        CareAssignment.assign(patient_id=patient, user_id=clinician, by=clinician, at=AT)
    with pytest.raises(NotPermitted):
        RegisteredProvider.appoint(patient_id=patient, user_id=clinician, by=clinician, at=AT)
    assignment = CareAssignment.assign(patient_id=patient, user_id=clinician, by=uuid4(), at=AT)
    assignment.end(by=clinician, at=AT)  # taking oneself off is allowed
    with pytest.raises(NotPermitted):
        assignment.assign_again(by=clinician, at=AT)
    provider = RegisteredProvider.appoint(patient_id=patient, user_id=uuid4(), by=uuid4(), at=AT)
    with pytest.raises(NotPermitted):
        provider.change(user_id=clinician, by=clinician, at=AT)


def test_an_assignment_is_one_per_patient_and_clinician_and_round_trips() -> None:
    patient, clinician, staff = uuid4(), uuid4(), uuid4()
    assignment = CareAssignment.assign(patient_id=patient, user_id=clinician, by=staff, at=AT)
    assert assignment.id == care_assignment_id(patient, clinician)
    with pytest.raises(EntryStateError):
        assignment.assign_again(by=staff, at=AT)
    assignment.end(by=staff, at=AT)
    with pytest.raises(EntryStateError):
        assignment.end(by=staff, at=AT)
    assignment.assign_again(by=staff, at=AT)
    memory = new_memory()
    (back,) = assert_round_trips(memory, assignment)
    assert back.active
    named = (patient_subject(patient), user_subject(clinician))
    assert subjects(memory, back) == {tuple(sorted(named, key=str.encode))}


def test_a_changed_registered_provider_names_the_former_one_too() -> None:
    patient, first, second = uuid4(), uuid4(), uuid4()
    provider = RegisteredProvider.appoint(patient_id=patient, user_id=first, by=uuid4(), at=AT)
    provider.change(user_id=second, by=uuid4(), at=AT)
    with pytest.raises(EntryStateError):
        provider.change(user_id=second, by=uuid4(), at=AT)
    assert provider.ledger_subjects() and set(provider.ledger_subjects()) == {
        patient_subject(patient),
        user_subject(first),
        user_subject(second),
    }
    provider.clear(by=uuid4(), at=AT)
    assert provider.user_id is None
    with pytest.raises(EntryStateError):
        provider.clear(by=uuid4(), at=AT)
    (back,) = assert_round_trips(new_memory(), provider)
    assert back.user_id is None and back.previous == second


def test_only_a_drafts_author_passes_the_author_check() -> None:
    note = Note.draft(patient_id=uuid4(), author_id=uuid4(), kind="progress", text="draft")
    note.check_author(note.author_id, "edit")
    with pytest.raises(NotPermitted, match="only the author"):
        note.check_author(uuid4(), "sign")
