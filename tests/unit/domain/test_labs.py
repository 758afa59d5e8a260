from __future__ import annotations

from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import patient_subject
from domain.errors import ConversionNotDefined, EntryStateError, InvalidEntry, InvalidQuantity
from domain.labs import LabResult
from domain.quantities import Quantity
from tests.unit.domain.memory import Memory, assert_round_trips, subjects

HL7 = (
    b"MSH|^~\\&|LAB|ACME|EHR|CLINIC|20240105093000||ORU^R01|123|P|2.5.1\r"
    b"OBX|1|NM|2345-7^Glucose^LN||5.2|mg/dL^^UCUM|3.9-5.5|N|||F|||20240105083000-0500\r"
)


def receive(value: str = "5.2", unit: str = "mg/dL", **overrides: object) -> LabResult:
    fields: dict[str, object] = {
        "patient_id": uuid4(),
        "loinc_code": "2345-7",
        "test_name": "Glucose",
        "quantity": Quantity(value, unit),
        "reference_range": "3.9-5.5",
        "reference_low": "3.9",
        "reference_high": "5.5",
        "abnormal_flag": "N",
        "performing_lab": "ACME Lab",
        "collected_at": "20240105083000-0500",
        "source_message": HL7,
        "source_format": "HL7v2",
    }
    fields.update(overrides)
    return LabResult.receive(**fields)  # type: ignore[arg-type]


def test_5_2_mg_dl_is_stored_and_returned_as_exactly_5_2_and_mg_dl(memory: Memory) -> None:
    result = receive()
    (again,) = assert_round_trips(memory, result)
    assert (again.value, again.unit) == ("5.2", "mg/dL")
    assert type(again.value) is str and type(again.unit) is str
    (received,) = memory.stored(result.id)
    assert (received.value, received.unit) == ("5.2", "mg/dL")
    assert again.quantity == Quantity("5.2", "mg/dL")


def test_trailing_zeros_are_kept(memory: Memory) -> None:
    (again,) = memory.round_trip(receive("0.10", "mmol/L"))
    assert again.value == "0.10"


def test_the_source_message_and_range_are_kept_exactly_as_received(memory: Memory) -> None:
    (again,) = memory.round_trip(receive())
    assert again.source_message == HL7
    assert (again.reference_range, again.reference_low, again.reference_high) == (
        "3.9-5.5",
        "3.9",
        "5.5",
    )
    assert again.collected_at == "20240105083000-0500" and again.performing_lab == "ACME Lab"


def test_a_float_value_is_refused_before_it_reaches_the_ledger() -> None:
    with pytest.raises(InvalidQuantity):
        receive(value=5.2)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuantity, match=r"^reference_low is not a decimal string"):
        receive(reference_low="3.9e0")
    with pytest.raises(InvalidQuantity, match=r"^quantity must be a Quantity, not float"):
        receive(quantity=5.2)


def test_the_source_message_must_be_bytes() -> None:
    with pytest.raises(InvalidEntry, match=r"^source_message must be bytes"):
        receive(source_message=HL7.decode())


def test_an_imported_result_names_its_document_and_segment_instead_of_a_copy(
    memory: Memory,
) -> None:
    document_id = uuid4()
    result = receive(
        source_message=None, source_document_id=document_id, source_segment=2, source_set_id="1"
    )
    (again,) = assert_round_trips(memory, result)
    assert (again.source_message, again.source_document_id) == (None, document_id)
    assert (again.source_segment, again.source_set_id) == (2, "1")
    (received,) = memory.stored(result.id)
    assert type(received).class_version == 3 and received.source_message is None


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ({"source_message": None}, "exactly one"),
        ({"source_document_id": uuid4(), "source_segment": 2}, "exactly one"),
        ({"source_segment": 2}, "go with source_document_id"),
        ({"source_set_id": "1"}, "go with source_document_id"),
        ({"source_message": None, "source_document_id": "doc", "source_segment": 2}, "UUID"),
        ({"source_message": None, "source_document_id": uuid4()}, "positive whole number"),
        ({"source_message": None, "source_document_id": uuid4(), "source_segment": 0}, "positive"),
        ({"source_message": None, "source_document_id": uuid4(), "source_segment": True}, "whole"),
        (
            {"source_message": None, "source_document_id": uuid4(), "source_segment": 2,
             "source_set_id": " "},
            "source_set_id must be non-empty text",
        ),
    ],
)  # fmt: skip
def test_a_result_has_exactly_one_source(source: dict[str, object], refused: str) -> None:
    with pytest.raises(InvalidEntry, match=refused):
        receive(**source)


def test_a_result_received_before_references_existed_still_reads(memory: Memory) -> None:
    """A version 1 ``Received`` (always a copy of the message, no reference fields) is upcast
    when read: the copy is kept and the reference fields are None."""
    result = receive()
    memory.save(result)
    [stored] = memory.recorder.select_events(result.id)
    state = memory.mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 3
    for name in ("source_document_id", "source_segment", "source_set_id"):
        del state[name]
    state["subjects"] = (patient_subject(result.patient_id),)  # stamped, as versions 1-2 were
    old = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic=stored.topic,
        state=memory.mapper.transcoder.encode(state),
    )
    memory.recorder.insert_events([old])
    again = memory.repository.get(old.originator_id)
    assert again.source_message == HL7 and (again.value, again.unit) == ("5.2", "mg/dL")
    assert (again.source_document_id, again.source_segment, again.source_set_id) == (None,) * 3
    (received,) = memory.stored(old.originator_id)
    assert received.subjects == (patient_subject(result.patient_id),)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(patient=st.uuids(), stamped=st.booleans())
def test_a_received_names_its_patient_as_its_subject_without_a_copy_in_its_payload(
    memory: Memory, patient: UUID, stamped: bool
) -> None:
    """Version 3 keeps no ``subjects`` in its payload; its subjects are its patient's, as the
    aggregate's. A version 2 event (a stamped copy in its payload) reads the same."""
    result = receive(patient_id=patient)
    memory.save(result)
    [stored] = memory.recorder.select_events(result.id)
    state = memory.mapper.transcoder.decode(stored.state)
    assert "subjects" not in state and state["class_version"] == 3
    if stamped:
        state.update(class_version=2, subjects=(patient_subject(patient),))
    old = StoredEvent(
        originator_id=uuid4(),
        originator_version=1,
        topic=stored.topic,
        state=memory.mapper.transcoder.encode(state),
    )
    memory.recorder.insert_events([old])
    for stream in (result.id, old.originator_id):
        (received,) = memory.stored(stream)
        assert received.subjects == (patient_subject(patient),) == tuple(result.ledger_subjects())
        assert memory.repository.get(stream).patient_id == patient


def test_a_conversion_to_mmol_per_litre_is_explicit_exact_and_keeps_the_original(
    memory: Memory,
) -> None:
    result = receive()
    conversion = result.record_conversion("mmol/L")
    assert conversion.converted == Quantity("0.28860", "mmol/L")
    assert Decimal(conversion.converted.value) == Decimal("5.2") * Decimal("0.0555")
    (again,) = assert_round_trips(memory, result)
    assert (again.value, again.unit) == ("5.2", "mg/dL")
    assert again.conversions == [
        {
            "from_value": "5.2",
            "from_unit": "mg/dL",
            "of_version": 1,
            "to_unit": "mmol/L",
            "converted_value": "0.28860",
            "factor": "0.0555",
            "rule": "glucose mg/dL->mmol/L x0.0555",
        }
    ]
    assert [type(e).__name__ for e in memory.stored(result.id)] == [
        "Received",
        "ConversionRecorded",
    ]


def test_an_undefined_conversion_records_nothing() -> None:
    result = receive()
    result.collect_events()
    with pytest.raises(ConversionNotDefined):
        result.record_conversion("mol/L")
    assert result.collect_events() == [] and result.conversions == []


def test_a_correction_is_a_new_event_pointing_at_what_it_corrects(memory: Memory) -> None:
    result = receive()
    first = result.correct(quantity=Quantity("5.4", "mg/dL"), reason="re-run", corrects_version=1)
    result.correct(quantity=Quantity("5.3", "mg/dL"), reason="calibration", corrects_version=2)
    (again,) = assert_round_trips(memory, result)
    assert again.history == [
        {"version": 1, "value": "5.2", "unit": "mg/dL"},
        {"version": 2, "value": "5.4", "unit": "mg/dL"},
        {"version": 3, "value": "5.3", "unit": "mg/dL"},
    ]
    assert again.source_message == HL7
    corrected = memory.stored(result.id)[1]
    assert (corrected.correction_id, corrected.corrects_version) == (first, 1)


def test_a_correction_must_correct_the_current_value() -> None:
    result = receive()
    result.correct(quantity=Quantity("5.4", "mg/dL"), reason="re-run", corrects_version=1)
    with pytest.raises(EntryStateError, match="corrects_version must be 2"):
        result.correct(quantity=Quantity("5.0", "mg/dL"), reason="stale", corrects_version=1)


def test_a_conversion_after_a_correction_names_the_corrected_version() -> None:
    result = receive()
    result.correct(quantity=Quantity("90", "mg/dL"), reason="typo", corrects_version=1)
    result.record_conversion("mmol/L")
    assert result.conversions[0]["of_version"] == 2
    assert result.conversions[0]["converted_value"] == "4.9950"


def test_lab_events_concern_the_patient(memory: Memory) -> None:
    result = receive()
    result.record_conversion("mmol/L")
    memory.save(result)
    assert subjects(memory, result) == {(patient_subject(result.patient_id),)}
