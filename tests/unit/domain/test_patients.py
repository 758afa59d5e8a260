from __future__ import annotations

from datetime import date, datetime

import pytest

from domain.base import patient_subject
from domain.errors import DuplicateIdentifier, InvalidEntry
from domain.patients import Patient
from tests.unit.domain.memory import Memory, assert_round_trips, subjects


def register(**overrides: object) -> Patient:
    fields: dict[str, object] = {
        "mrn": "MRN-0001",
        "given_name": "Ada",
        "family_name": "Example",
        "birth_date": date(1980, 2, 29),
        "sex": "female",
        "identifiers": [{"system": "urn:oid:2.16.840.1.113883.4.1", "value": "000-00-0000"}],
    }
    fields.update(overrides)
    return Patient.register(**fields)  # type: ignore[arg-type]


def test_a_patient_is_registered_with_demographics_and_identifiers() -> None:
    patient = register()
    assert patient.mrn == "MRN-0001" and patient.birth_date == date(1980, 2, 29)
    assert patient.identifiers == [
        {"system": "urn:oid:2.16.840.1.113883.4.1", "value": "000-00-0000"}
    ]


def test_a_birth_date_is_a_date_not_a_datetime() -> None:
    with pytest.raises(InvalidEntry, match=r"^birth_date must be a date$"):
        register(birth_date=datetime(1980, 2, 29))


def test_sex_is_an_administrative_gender_code() -> None:
    with pytest.raises(InvalidEntry, match=r"^sex must be one of"):
        register(sex="F")


def test_an_identifier_is_a_system_and_a_value() -> None:
    with pytest.raises(InvalidEntry, match="exactly 'system' and 'value'"):
        register(identifiers=[{"value": "x"}])


def test_demographics_change_names_only_the_fields_that_changed() -> None:
    patient = register()
    patient.change_demographics(family_name="Married", given_name="Ada")
    (changed,) = [e for e in patient.collect_events() if type(e).__name__ == "DemographicsChanged"]
    assert changed.changes == {"family_name": "Married"}
    assert patient.family_name == "Married"


def test_the_mrn_cannot_be_changed_as_demographics() -> None:
    with pytest.raises(InvalidEntry, match=r"^cannot change mrn: only given_name"):
        register().change_demographics(mrn="MRN-2")


def test_a_change_to_nothing_is_refused() -> None:
    with pytest.raises(InvalidEntry, match="no demographic field changes"):
        register().change_demographics(sex="female")


def test_an_identifier_is_held_once() -> None:
    patient = register()
    patient.add_identifier(system="urn:insurer", value="XYZ-9")
    with pytest.raises(DuplicateIdentifier):
        patient.add_identifier(system="urn:insurer", value="XYZ-9")
    with pytest.raises(DuplicateIdentifier):
        register(identifiers=[{"system": "a", "value": "1"}, {"system": "a", "value": "1"}])


def test_a_patients_events_concern_the_patient_and_replay(memory: Memory) -> None:
    patient = register()
    patient.change_demographics(birth_date=date(1981, 3, 1))
    patient.add_identifier(system="urn:insurer", value="XYZ-9")
    (again,) = assert_round_trips(memory, patient)
    assert subjects(memory, patient) == {(patient_subject(patient.id),)}
    assert again.birth_date == date(1981, 3, 1)
