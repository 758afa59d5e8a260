"""Problems, medications, allergies and vital signs."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest

from domain.allergies import Allergy
from domain.base import patient_subject
from domain.errors import EntryStateError, InvalidEntry, InvalidQuantity
from domain.medications import Medication
from domain.problems import Problem
from domain.quantities import Quantity
from domain.vitals import VitalSign
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects


def problem() -> Problem:
    return Problem.record(
        patient_id=uuid4(),
        description="Type 2 diabetes mellitus",
        recorded_by=uuid4(),
        code_system="http://snomed.info/sct",
        code="44054006",
        onset="about 2019",
    )


def medication() -> Medication:
    return Medication.start(
        patient_id=uuid4(),
        drug="metformin",
        dose=Quantity("500", "mg"),
        started_on=date(2026, 1, 5),
        prescriber_id=uuid4(),
        frequency="twice daily",
    )


def test_a_problem_is_resolved_while_active_and_reopened_while_resolved(memory: Memory) -> None:
    p = problem()
    with pytest.raises(EntryStateError, match="is not resolved"):
        p.reopen(reopened_by=uuid4(), reason="x")
    p.resolve(resolved_by=uuid4(), resolved_on=date(2026, 2, 1))
    with pytest.raises(EntryStateError, match="is not active"):
        p.resolve(resolved_by=uuid4())
    p.reopen(reopened_by=uuid4(), reason="recurred")
    (again,) = assert_round_trips(memory, p)
    assert again.status == "active" and again.onset == "about 2019"
    assert subjects(memory, p) == {(patient_subject(p.patient_id),)}


def test_a_medication_dose_is_a_decimal_string_and_its_unit(memory: Memory) -> None:
    m = medication()
    m.change_dose(
        dose=Quantity("0.5", "g"), changed_on=date(2026, 2, 1), changed_by=uuid4(), reason="x"
    )
    (again,) = assert_round_trips(memory, m)
    assert again.dose == Quantity("0.5", "g")
    assert (again.dose_value, again.dose_unit) == ("0.5", "g")
    forged = Quantity("1", "mg")
    object.__setattr__(forged, "value", 1.0)  # built around the dataclass's own checks
    with pytest.raises(InvalidQuantity, match=r"^dose.value must be a decimal string, not float"):
        m.change_dose(dose=forged, changed_on=date(2026, 2, 1), changed_by=uuid4(), reason="x")


def test_a_stopped_medication_is_not_changed_or_stopped_again() -> None:
    m = medication()
    m.stop(stopped_on=date(2026, 3, 1), stopped_by=uuid4(), reason="side effects")
    with pytest.raises(EntryStateError, match="is stopped"):
        m.change_dose(
            dose=Quantity("1000", "mg"), changed_on=date(2026, 3, 2), changed_by=uuid4(), reason="x"
        )
    with pytest.raises(EntryStateError, match="is stopped"):
        m.stop(stopped_on=date(2026, 3, 2), stopped_by=uuid4(), reason="again")
    assert not m.active and m.dose == Quantity("500", "mg")


def test_an_allergy_is_inactivated_once_and_its_severity_is_a_known_word(memory: Memory) -> None:
    with pytest.raises(InvalidEntry, match=r"^severity must be one of mild"):
        Allergy.record(
            patient_id=uuid4(), substance="penicillin", recorded_by=uuid4(), severity="bad"
        )
    a = Allergy.record(
        patient_id=uuid4(),
        substance="penicillin",
        recorded_by=uuid4(),
        reaction="hives",
        severity="moderate",
    )
    a.inactivate(by=uuid4(), reason="refuted by challenge test")
    with pytest.raises(EntryStateError, match="already inactive"):
        a.inactivate(by=uuid4(), reason="again")
    (again,) = assert_round_trips(memory, a)
    assert not again.active


def test_a_vital_sign_keeps_its_value_unit_and_loinc_code_and_stays_when_in_error(
    memory: Memory,
) -> None:
    v = VitalSign.measure(
        patient_id=uuid4(),
        loinc_code="8310-5",
        name="Body temperature",
        quantity=Quantity("37.0", "Cel"),
        measured_at=AT,
    )
    v.mark_in_error(by=uuid4(), reason="wrong patient")
    with pytest.raises(EntryStateError):
        v.mark_in_error(by=uuid4(), reason="again")
    (again,) = assert_round_trips(memory, v)
    assert (again.value, again.unit, again.loinc_code) == ("37.0", "Cel", "8310-5")
    assert again.in_error and again.quantity == Quantity("37.0", "Cel")


def test_a_vital_signs_time_is_timezone_aware() -> None:
    with pytest.raises(InvalidEntry, match=r"^measured_at must be a timezone-aware datetime$"):
        VitalSign.measure(
            patient_id=uuid4(),
            loinc_code="8867-4",
            name="Heart rate",
            quantity=Quantity("72", "/min"),
            measured_at=AT.replace(tzinfo=None),
        )
