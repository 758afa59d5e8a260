from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.amendments import AmendmentRequest
from domain.base import patient_subject
from domain.errors import AmendmentStateError, InvalidEntry
from domain.notes import Note
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects


def request(target_id: object = None) -> AmendmentRequest:
    return AmendmentRequest.request(
        patient_id=uuid4(),
        target_type="note",
        target_id=target_id or uuid4(),
        requested_change="The note says smoker; I never smoked.",
        reason="inaccurate",
        received_at=AT,
    )


def test_a_denied_amendment_keeps_the_request_the_denial_and_the_disagreement_linked(
    memory: Memory,
) -> None:
    amendment = request()
    amendment.deny(
        decided_by=uuid4(),
        at=AT + timedelta(days=10),
        basis="accurate_and_complete",
        denial_text="The record is accurate and complete.",
    )
    amendment.file_disagreement(statement="I disagree.", at=AT + timedelta(days=20))
    amendment.file_rebuttal(author_id=uuid4(), text="We stand by it.", at=AT + timedelta(days=25))
    (again,) = assert_round_trips(memory, amendment)
    assert again.status == "denied"
    assert again.requested_change == "The note says smoker; I never smoked."
    assert again.denial_text == "The record is accurate and complete."
    assert (again.disagreement, again.rebuttal) == ("I disagree.", "We stand by it.")
    events = memory.stored(amendment.id)
    assert [type(e).__name__ for e in events] == [
        "Requested",
        "Denied",
        "DisagreementFiled",
        "RebuttalFiled",
    ]
    assert {e.originator_id for e in events} == {amendment.id}
    assert subjects(memory, amendment) == {(patient_subject(amendment.patient_id),)}


def test_an_accepted_amendment_links_the_addendum_made() -> None:
    note = Note.draft(patient_id=uuid4(), author_id=uuid4(), kind="progress", text="smoker")
    note.sign(signed_by=note.author_id, at=AT)
    amendment = request(target_id=note.id)
    addendum_id = note.add_addendum(
        text="Never smoked.",
        reason="patient amendment",
        author_id=note.author_id,
        at=AT,
        amendment_request_id=amendment.id,
    )
    amendment.accept(decided_by=note.author_id, at=AT, amendment_id=addendum_id)
    assert amendment.status == "accepted" and amendment.amendment_id == addendum_id
    assert note.addenda[0]["amendment_request_id"] == amendment.id


def test_a_request_is_decided_once() -> None:
    amendment = request()
    amendment.accept(decided_by=uuid4(), at=AT, amendment_id=uuid4())
    with pytest.raises(AmendmentStateError, match="is already accepted"):
        amendment.deny(decided_by=uuid4(), at=AT, basis="accurate_and_complete", denial_text="x")
    with pytest.raises(AmendmentStateError, match="is already accepted"):
        amendment.accept(decided_by=uuid4(), at=AT, amendment_id=uuid4())


def test_a_disagreement_follows_a_denial_only() -> None:
    with pytest.raises(AmendmentStateError, match="a disagreement follows a denial only"):
        request().file_disagreement(statement="x", at=AT)
    accepted = request()
    accepted.accept(decided_by=uuid4(), at=AT, amendment_id=uuid4())
    with pytest.raises(AmendmentStateError):
        accepted.file_disagreement(statement="x", at=AT)


def test_a_rebuttal_follows_a_disagreement_only() -> None:
    amendment = request()
    amendment.deny(decided_by=uuid4(), at=AT, basis="accurate_and_complete", denial_text="x")
    with pytest.raises(AmendmentStateError, match="a rebuttal follows a disagreement only"):
        amendment.file_rebuttal(author_id=uuid4(), text="x", at=AT)
    amendment.file_disagreement(statement="no", at=AT)
    with pytest.raises(AmendmentStateError, match="already has a disagreement"):
        amendment.file_disagreement(statement="again", at=AT)
    amendment.file_rebuttal(author_id=uuid4(), text="x", at=AT)
    with pytest.raises(AmendmentStateError, match="already has a rebuttal"):
        amendment.file_rebuttal(author_id=uuid4(), text="y", at=AT)


def test_a_denial_names_a_basis_of_164_526_a_2() -> None:
    with pytest.raises(InvalidEntry, match=r"^basis must be one of not_created_by_covered_entity"):
        request().deny(decided_by=uuid4(), at=AT, basis="we said so", denial_text="x")


def test_a_request_names_what_it_would_amend() -> None:
    with pytest.raises(InvalidEntry, match=r"^target_type must be one of"):
        AmendmentRequest.request(
            patient_id=uuid4(),
            target_type="billing",
            target_id=uuid4(),
            requested_change="x",
            reason="y",
            received_at=AT,
        )
