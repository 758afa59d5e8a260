from __future__ import annotations

from uuid import uuid4

import pytest

from domain.access import ACTIONS, Access, Disclosure
from domain.base import patient_subject, user_subject
from domain.errors import InvalidEntry
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects


@pytest.mark.parametrize("action", ACTIONS)
def test_every_kind_of_read_is_an_event_with_who_when_what_and_why(
    memory: Memory, action: str
) -> None:
    user, patient = uuid4(), uuid4()
    access = Access.record(
        user_id=user,
        patient_id=patient,
        action=action,
        data_category="labs",
        purpose_of_use="TREAT",
        at=AT,
    )
    (again,) = assert_round_trips(memory, access)
    assert (again.user_id, again.patient_id, again.at) == (user, patient, AT)
    assert (again.data_category, again.purpose_of_use, again.outcome) == (
        "labs",
        "TREAT",
        "success",
    )
    assert subjects(memory, access) == {(patient_subject(patient), user_subject(user))}


def test_a_search_without_a_patient_concerns_the_reader(memory: Memory) -> None:
    user = uuid4()
    access = Access.record(
        user_id=user,
        action="query",
        data_category="demographics",
        purpose_of_use="HOPERAT",
        at=AT,
        detail={"matches": 3},
    )
    memory.save(access)
    assert subjects(memory, access) == {(user_subject(user),)}


def test_a_failed_read_is_recorded_too() -> None:
    access = Access.record(
        user_id=uuid4(),
        patient_id=uuid4(),
        action="access",
        data_category="chart",
        purpose_of_use="ETREAT",
        outcome="failure",
        at=AT,
    )
    assert access.outcome == "failure"


@pytest.mark.parametrize(
    ("field", "value"),
    [("action", "peek"), ("data_category", "everything"), ("purpose_of_use", "curiosity")],
)
def test_an_access_names_a_known_action_category_and_purpose(field: str, value: str) -> None:
    fields = {"action": "access", "data_category": "chart", "purpose_of_use": "TREAT"}
    fields[field] = value
    with pytest.raises(InvalidEntry, match=rf"^{field} must be one of"):
        Access.record(user_id=uuid4(), at=AT, **fields)


def test_a_disclosure_is_accounted_for_with_recipient_purpose_and_who(memory: Memory) -> None:
    patient, by = uuid4(), uuid4()
    disclosure = Disclosure.record(
        patient_id=patient,
        disclosed_at=AT,
        recipient_name="County Health Department",
        recipient_address="1 Main St",
        description="immunization record",
        purpose="public health reporting",
        by=by,
    )
    (again,) = assert_round_trips(memory, disclosure)
    assert again.recipient_name == "County Health Department"
    assert subjects(memory, disclosure) == {(patient_subject(patient), user_subject(by))}
