"""The EHI export's shape rules for any input (issue 19): an Encounter's period never ends
before it starts (FHIR per-1) whatever the check-in, schedule and export times; a part of a
record shown to one patient's export never shares the whole record's id; an audit event shown
in part is tagged SUBSETTED under its own id; a medication stopped before it started keeps a
valid period. Each is checked against fhir.resources' R4B models too."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationrequest import MedicationRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.appointments import Appointment
from domain.medications import Medication
from domain.quantities import Quantity
from projections.fhir.appointments import encounter, encounter_timing
from projections.fhir.audit_events import AuditLines, audit_event
from projections.fhir.common import SUBSETTED, Context, Tracked, subset_id
from projections.fhir.medications import medication_request
from projections.fhir.ndjson import dumps
from verify.canonical import format_timestamp

SETTINGS = settings(max_examples=150, deadline=None)
BASE = datetime(2026, 1, 1, tzinfo=UTC)
RECORDED = "2026-01-01T00:00:00.000000Z"

offsets = st.integers(min_value=-3 * 86_400_000_000, max_value=3 * 86_400_000_000).map(
    lambda us: timedelta(microseconds=us)
)
lengths = st.integers(min_value=1, max_value=24 * 3_600_000_000).map(
    lambda us: timedelta(microseconds=us)
)


def _checked_in(start: datetime, length: timedelta, arrival: timedelta) -> Tracked:
    a = Appointment.book(
        patient_id=uuid4(), provider_id=uuid4(), start=start, end=start + length, reason="visit"
    )
    a.check_in(at=start + arrival)
    return Tracked(a, RECORDED, RECORDED, [])


@SETTINGS
@given(offsets, lengths, offsets, offsets)
def test_an_encounter_period_never_ends_before_it_starts(
    start: timedelta, length: timedelta, arrival: timedelta, now: timedelta
) -> None:
    record = _checked_in(BASE + start, length, arrival)
    at = format_timestamp(BASE + now)
    found = encounter(record, Context(str(uuid4()), "chartledger.local/p", at))
    assert found is not None
    period = found["period"]
    checked_in = format_timestamp(record.state.status_at)
    assert period["start"] == checked_in
    if "end" in period:
        # An end is the scheduled end, after the check-in, and only once it has passed.
        assert period["start"] < period["end"] == format_timestamp(record.state.end) <= at
        assert found["status"] == "finished"
    elif checked_in < format_timestamp(record.state.end):
        assert found["status"] == "in-progress"
    else:
        assert found["status"] == "unknown"  # a late arrival: no end is known
    model = Encounter.model_validate(json.loads(dumps(found)))
    assert model.period.start <= (model.period.end or model.period.start)
    assert found["type"] and found["serviceProvider"]["reference"].startswith("Organization/")


@SETTINGS
@given(st.datetimes(), st.datetimes(), st.datetimes())
def test_the_timing_rule_holds_for_any_three_timestamps(
    a: datetime, b: datetime, c: datetime
) -> None:
    checked_in, end, now = (format_timestamp(t.replace(tzinfo=UTC)) for t in (a, b, c))
    period, status = encounter_timing(checked_in, end, now)
    assert period["start"] == checked_in
    assert "end" not in period or period["start"] < period["end"] <= now
    assert status in {"finished", "in-progress", "unknown"}


ids = st.uuids().map(str)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=40), st.lists(ids, min_size=1, max_size=3, unique=True))
def test_a_subset_has_its_own_stable_id(whole: str, shown: list[str]) -> None:
    made = subset_id("Communication", whole, shown)
    assert made != whole and UUID(made)
    assert made == subset_id("Communication", whole, list(reversed(shown)))
    assert made != subset_id("AuditEvent", whole, shown)


@SETTINGS
@given(st.integers(min_value=0, max_value=2**62), ids, ids)
def test_an_audit_event_shown_in_part_is_subsetted_under_its_own_id(
    position: int, patient: str, stream: str
) -> None:
    context = Context(str(uuid4()), "chartledger.local/p", RECORDED)
    row = (position, RECORDED, RECORDED, None, str(uuid4()), "access", "chart", "success",
           "system", None, "domain.access:Access.Recorded", None, None, None)  # fmt: skip
    whole = audit_event(row, stream, [patient], context)
    part = json.loads(AuditLines(context).line(row, stream, [patient], whole=False))
    assert part["id"] != whole["id"] and part["meta"]["tag"] == [SUBSETTED]
    assert "meta" not in whole
    assert part["agent"][0]["type"] == whole["agent"][0]["type"]


@SETTINGS
@given(st.dates(min_value=date(1990, 1, 1)), st.none() | st.dates(min_value=date(1990, 1, 1)))
def test_a_medication_request_bounds_never_end_before_they_start(
    started: date, stopped: date | None
) -> None:
    med = Medication.start(
        patient_id=uuid4(), drug="Lisinopril", dose=Quantity("10", "mg"), started_on=started,
        prescriber_id=uuid4(),
    )  # fmt: skip
    if stopped is not None:
        med.stop(stopped_on=stopped, stopped_by=uuid4(), reason="done")
    found: dict[str, Any] = medication_request(Tracked(med, RECORDED, RECORDED, []))
    bounds = found["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]
    assert bounds["start"] <= bounds.get("end", bounds["start"])
    assert found["status"] == ("active" if stopped is None else "stopped")
    assert (stopped is not None and stopped < started) == ("extension" in found)
    MedicationRequest.model_validate(json.loads(dumps(found)))
