"""Patients: demographics and identifiers (the MRN and any others)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import choice, day, text
from domain.errors import DuplicateIdentifier, InvalidEntry

SEXES = ("female", "male", "other", "unknown")  # HL7 FHIR AdministrativeGender
CHANGEABLE = ("given_name", "family_name", "birth_date", "sex")


def _check_identifier(item: Any, field: str) -> dict[str, str]:
    if type(item) is not dict or set(item) != {"system", "value"}:
        raise InvalidEntry(f"{field} must be a map with exactly 'system' and 'value'")
    return {"system": text(item["system"], f"{field}.system"), "value": text(item["value"], field)}


class Patient(Record):
    @classmethod
    def register(
        cls,
        *,
        mrn: str,
        given_name: str,
        family_name: str,
        birth_date: date,
        sex: str,
        identifiers: Iterable[dict[str, str]] = (),
    ) -> Patient:
        checked = [_check_identifier(i, f"identifiers[{n}]") for n, i in enumerate(identifiers)]
        pairs = [(i["system"], i["value"]) for i in checked]
        if len(set(pairs)) != len(pairs):
            raise DuplicateIdentifier("identifiers lists the same system and value twice")
        return cls(
            mrn=text(mrn, "mrn"),
            given_name=text(given_name, "given_name"),
            family_name=text(family_name, "family_name"),
            birth_date=day(birth_date, "birth_date"),
            sex=choice(sex, "sex", SEXES),
            identifiers=checked,
        )

    @event("Registered")
    def __init__(
        self,
        mrn: str,
        given_name: str,
        family_name: str,
        birth_date: date,
        sex: str,
        identifiers: list[dict[str, str]],
    ) -> None:
        self.mrn = mrn
        self.given_name = given_name
        self.family_name = family_name
        self.birth_date = birth_date
        self.sex = sex
        self.identifiers = [dict(i) for i in identifiers]

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.id),)

    def change_demographics(self, **changes: Any) -> None:
        """Change any of ``CHANGEABLE``; fields given with their current value are left out."""
        checks = {
            "given_name": lambda v: text(v, "given_name"),
            "family_name": lambda v: text(v, "family_name"),
            "birth_date": lambda v: day(v, "birth_date"),
            "sex": lambda v: choice(v, "sex", SEXES),
        }
        unknown = sorted(set(changes) - set(CHANGEABLE))
        if unknown:
            raise InvalidEntry(f"cannot change {', '.join(unknown)}: only {', '.join(CHANGEABLE)}")
        checked = {k: checks[k](v) for k, v in changes.items() if getattr(self, k) != v}
        if not checked:
            raise InvalidEntry("no demographic field changes")
        self._change_demographics(changes=checked)

    @event("DemographicsChanged")
    def _change_demographics(self, changes: dict[str, Any]) -> None:
        for field, value in changes.items():
            setattr(self, field, value)

    def add_identifier(self, *, system: str, value: str) -> None:
        item = _check_identifier({"system": system, "value": value}, "identifier")
        if item in self.identifiers:
            raise DuplicateIdentifier(f"patient {self.id} already holds this {system} identifier")
        self._add_identifier(system=item["system"], value=item["value"])

    @event("IdentifierAdded")
    def _add_identifier(self, system: str, value: str) -> None:
        self.identifiers.append({"system": system, "value": value})
