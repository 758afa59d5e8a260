"""Properties of the FHIR import's rules for messages and encounters kept as the source wrote
them (docs/IMPORTS.md §9.3): for any text, a Communication's payload, times, topic, sender and
recipients survive read -> record -> export; an Encounter's status, class, period and
participants do too. No I/O: the domain's aggregates and the export's own functions."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.encounters import Encounter
from domain.imports.fhir_records import item
from domain.imports.fhir_values import read_json_line
from domain.messages import Thread
from projections.fhir.common import Tracked
from projections.fhir.communications import message
from projections.fhir.imported import imported_encounter
from projections.fhir.ndjson import dumps
from tests.property.test_fhir_import_properties import moments, written
from tests.support import FHIR_CONTEXT as CONTEXT
from tests.support import FHIR_SOURCE as SOURCE

texts = st.text(max_size=40)
shown = st.text(min_size=1, max_size=30).filter(lambda t: t.strip() != "")
times = st.builds(written, moments, st.integers(min_value=0, max_value=6), st.booleans()) | (
    st.dates().map(lambda d: d.isoformat())
)
parties = st.fixed_dictionaries(
    {"display": shown},
    optional={
        "reference": st.sampled_from(["Practitioner/pr-1", "RelatedPerson/rp-9"]),
        "identifier": st.fixed_dictionaries({"system": st.just("urn:x:npi"), "value": shown}),
    },
)


def through_a_file(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource as an NDJSON line writes it and the import reads it back."""
    return read_json_line(json.dumps(resource, ensure_ascii=False).encode("utf-8"))


def same_party(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["display"] == before["display"]
    if "identifier" in before:
        assert after["identifier"] == before["identifier"]
    elif "reference" in before:
        assert after["identifier"] == {"system": SOURCE, "value": before["reference"]}
        assert after["type"] == before["reference"].partition("/")[0]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(texts, max_size=3),
    st.lists(st.binary(max_size=40), max_size=2),
    st.one_of(st.none(), times),
    st.one_of(st.none(), times),
    parties,
    st.lists(parties, max_size=3),
    st.one_of(st.none(), shown),
)
def test_a_communication_survives_read_record_and_export_as_written(
    strings: list[str],
    attachments: list[bytes],
    sent: str | None,
    received: str | None,
    sender: dict[str, Any],
    recipients: list[dict[str, Any]],
    topic: str | None,
) -> None:
    payload: list[dict[str, Any]] = [{"contentString": s} for s in strings]
    payload += [
        {
            "contentAttachment": {
                "contentType": "application/pdf",
                "data": base64.b64encode(a).decode(),
            }
        }
        for a in attachments
    ]
    resource: dict[str, Any] = {
        "resourceType": "Communication",
        "id": "c-1",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "sender": sender,
        "recipient": recipients,
        "payload": payload,
    }
    for name, value in (("sent", sent), ("received", received)):
        if value is not None:
            resource[name] = value
    if topic is not None:
        resource["topic"] = {"text": topic}
    read = item(through_a_file(resource), CONTEXT)
    assert read.kind == "communication"
    f = read.fields
    thread = Thread.start(
        kind="imported", topic=f["topic"] or "(no subject)", patient_ids=[uuid4()]
    )
    thread.import_communication(
        source=SOURCE, resource_id=read.resource_id, status=f["status"], topic=f["topic"],
        sent=f["sent"], received=f["received"], sender=f["sender"], recipients=f["recipients"],
        payload=f["parts"], category=f["category"], medium=f["medium"], reason=f["reason"],
    )  # fmt: skip
    event = thread.collect_events()[-1]
    out = message(thread, event, "2026-12-01T00:00:00.000000Z", lambda s: True)
    assert out is not None
    out = json.loads(dumps(out))
    assert out.get("payload") == (payload or None)
    assert (out.get("sent"), out.get("received")) == (sent, received)
    assert out.get("topic") == resource.get("topic")
    assert {"system": SOURCE, "value": "Communication/c-1"} in out["identifier"]
    same_party(sender, out["sender"])
    for before, after in zip(recipients, out.get("recipient", []), strict=True):
        same_party(before, after)


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["planned", "finished", "cancelled", "unknown"]),
    shown,
    st.one_of(st.none(), times),
    st.one_of(st.none(), times),
    st.lists(parties, max_size=3),
    st.lists(shown, max_size=2),
)
def test_an_encounter_survives_read_record_and_export_as_written(
    status: str,
    code: str,
    start: str | None,
    end: str | None,
    participants: list[dict[str, Any]],
    reasons: list[str],
) -> None:
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": "e-1",
        "status": status,
        "class": {"system": "urn:x:class", "code": code},
        "subject": {"reference": "Patient/p1"},
        "participant": [{"individual": p} for p in participants],
        "period": {k: v for k, v in (("start", start), ("end", end)) if v is not None},
        "reasonCode": [{"text": r} for r in reasons],
    }
    read = item(through_a_file(resource), CONTEXT)
    f = read.fields
    encounter = Encounter.import_record(
        patient_id=uuid4(), source=SOURCE, resource_id=read.resource_id, status=f["status"],
        encounter_class=f["encounter_class"], types=f["types"], period_start=f["period_start"],
        period_end=f["period_end"], participants=f["participants"], reasons=f["reasons"],
        recorded_by=uuid4(),
    )  # fmt: skip
    now = datetime(2026, 12, 1, tzinfo=UTC).isoformat()
    out = json.loads(dumps(imported_encounter(Tracked(encounter, now, now, []), set())))
    assert (out["status"], out["class"]) == (status, resource["class"])
    assert out.get("period", {}) == resource["period"]
    assert out.get("reasonCode", []) == resource["reasonCode"]
    for before, after in zip(participants, out.get("participant", []), strict=True):
        same_party(before, after["individual"])
