"""Imported messages and encounters (domain/messages.py ``imported`` threads,
domain/encounters.py) and the FHIR reader's refusals for them: kept exactly through the
canonical encoding, refused naming the element and the rule, never a value."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from domain.encounters import Encounter
from domain.errors import InvalidEntry, ThreadStateError
from domain.imports.fhir_records import Refused, item
from domain.messages import Thread
from tests.support import FHIR_CONTEXT as CONTEXT
from tests.support import FHIR_SOURCE as SOURCE
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects


def letter(**parts: Any) -> dict[str, Any]:
    return {
        "resourceType": "Communication",
        "id": "c-1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        **parts,
    }


def test_an_imported_message_keeps_its_bytes_text_and_parties_through_the_store(
    memory: Memory,
) -> None:
    patient = uuid4()
    thread = Thread.start(kind="imported", topic="(no subject)", patient_ids=[patient])
    thread.import_communication(
        source=SOURCE, resource_id="c-1", status="completed", topic=None,
        sent="2024-04-02T10:15:30.25-04:00", received="2024-04", sender={"display": "Dr B"},
        recipients=[{"reference": "Patient/p1", "patient": str(patient)}],
        payload=[{"text": "  "}, {"data": b"\x00\xff", "media_type": "application/pdf"}],
    )  # fmt: skip
    (restored,) = assert_round_trips(memory, thread)
    event = memory.stored(thread.id)[-1]
    assert event.parts == [{"text": "  "}, {"data": b"\x00\xff", "media_type": "application/pdf"}]
    assert (event.sent, event.received) == ("2024-04-02T10:15:30.25-04:00", "2024-04")
    assert subjects(memory, thread) == {(f"patient:{patient}",)}
    with pytest.raises(ThreadStateError, match="is a imported thread, not secure"):
        restored.post(sender=f"patient:{patient}", body="hi", at=AT)


def test_only_an_imported_thread_takes_an_imported_message_and_only_known_shapes() -> None:
    email = Thread.start(kind="email", topic="t", patient_ids=[uuid4()])
    ok: dict[str, Any] = dict(
        source=SOURCE, resource_id="c", status="completed", topic=None, sent=None,
        received=None, sender=None, recipients=[], payload=[],
    )  # fmt: skip
    with pytest.raises(ThreadStateError, match="not imported"):
        email.import_communication(**ok)
    thread = Thread.start(kind="imported", topic="t", patient_ids=[uuid4()])
    with pytest.raises(InvalidEntry, match=r"recipients\[0\] has keys other than"):
        thread.import_communication(**{**ok, "recipients": [{"password": "x"}]})
    with pytest.raises(InvalidEntry, match=r"payload\[0\] must be a text or an attachment"):
        thread.import_communication(**{**ok, "payload": [{"data": "not bytes", "x": 1}]})
    with pytest.raises(InvalidEntry, match=r"payload\[0\].data must be bytes"):
        thread.import_communication(**{**ok, "payload": [{"data": "text"}]})


def test_an_imported_encounter_round_trips_and_concerns_its_patient(memory: Memory) -> None:
    patient = uuid4()
    encounter = Encounter.import_record(
        patient_id=patient, source=SOURCE, resource_id="e-1", status="finished",
        encounter_class={"code": "AMB"}, period_start="2024-05-02",
        participants=[{"individual": {"display": "Dr B"}}], recorded_by=uuid4(),
    )  # fmt: skip
    assert_round_trips(memory, encounter)
    assert subjects(memory, encounter) == {(f"patient:{patient}",)}
    with pytest.raises(InvalidEntry, match="encounter_class must be a coding with a code"):
        Encounter.import_record(
            patient_id=patient, source=SOURCE, resource_id="e-2", status="finished",
            encounter_class={"display": "no code"}, recorded_by=uuid4(),
        )  # fmt: skip


@pytest.mark.parametrize(
    ("resource", "reason"),
    [
        (
            letter(payload=[{"contentReference": {"reference": "DocumentReference/secret-7"}}]),
            "payload[0].contentReference is not read: only contentString and contentAttachment",
        ),
        (
            letter(payload=[{"contentAttachment": {"data": "c2VjcmV0"}}]),
            "payload[0].contentAttachment.contentType is missing (FHIR att-1)",
        ),
        (
            letter(payload=[{"contentAttachment": {"contentType": "text/plain", "data": "%%"}}]),
            "payload[0].contentAttachment data is not base64",
        ),
        (letter(sent="Tuesday 9am at Mrs Shaw's"), "sent is not a FHIR dateTime"),
        ({**letter(), "status": None}, "status is missing"),
        (
            {
                "resourceType": "Encounter",
                "id": "e-1",
                "status": "done-ish",
                "class": {"code": "AMB"},
                "subject": {"reference": "Patient/p1"},
            },
            "status is missing or not an R4 Encounter status",
        ),
        (
            {
                "resourceType": "Encounter",
                "id": "e-1",
                "status": "finished",
                "class": {"display": "Mrs Shaw's visit"},
                "subject": {"reference": "Patient/p1"},
            },
            "class is missing or has no code",
        ),
    ],
)
def test_a_message_or_encounter_the_record_cannot_keep_is_refused_by_element_and_rule(
    resource: dict[str, Any], reason: str
) -> None:
    with pytest.raises(Refused) as refused:
        item(resource, CONTEXT)
    assert any(r.startswith(reason) for r in refused.value.reasons), refused.value.reasons
    assert not [r for r in refused.value.reasons if "secret" in r or "Shaw" in r or "%%" in r]
