"""Encounters imported from another record: history, kept as the source wrote it.

An imported encounter is not a booking: it never enters the practice's schedule (whose
``ProviderDay`` refuses double booking, which past visits elsewhere may well be) and names no
practice user. It keeps the source's status, class, types, period (times as text, exactly as
sent), participants as the source named them and reasons (docs/IMPORTS.md §9.3).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import identifier, optional_text, payload, text
from domain.errors import InvalidEntry


class Encounter(Record):
    @classmethod
    def import_record(
        cls,
        *,
        patient_id: UUID,
        source: str,
        resource_id: str,
        status: str,
        encounter_class: dict[str, str],
        types: Sequence[dict[str, Any]] = (),
        period_start: str | None = None,
        period_end: str | None = None,
        participants: Sequence[dict[str, Any]] = (),
        reasons: Sequence[dict[str, Any]] = (),
        recorded_by: UUID,
    ) -> Encounter:
        if type(encounter_class) is not dict or not encounter_class.get("code"):
            raise InvalidEntry("encounter_class must be a coding with a code")
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            source=text(source, "source"),
            resource_id=text(resource_id, "resource_id"),
            status=text(status, "status"),
            encounter_class={
                text(k, "encounter_class"): text(v, "encounter_class")
                for k, v in encounter_class.items()
            },
            types=[payload(t, "types") for t in types],
            period_start=optional_text(period_start, "period_start"),
            period_end=optional_text(period_end, "period_end"),
            participants=[payload(p, "participants") for p in participants],
            reasons=[payload(r, "reasons") for r in reasons],
            recorded_by=identifier(recorded_by, "recorded_by"),
        )

    @event("Imported")
    def __init__(
        self,
        patient_id: UUID,
        source: str,
        resource_id: str,
        status: str,
        encounter_class: dict[str, str],
        types: list[dict[str, Any]],
        period_start: str | None,
        period_end: str | None,
        participants: list[dict[str, Any]],
        reasons: list[dict[str, Any]],
        recorded_by: UUID,
    ) -> None:
        self.patient_id = patient_id
        self.source = source
        self.resource_id = resource_id
        self.status = status
        self.encounter_class = dict(encounter_class)
        self.types = list(types)
        self.period_start = period_start
        self.period_end = period_end
        self.participants = list(participants)
        self.reasons = list(reasons)
        self.recorded_by = recorded_by

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)
