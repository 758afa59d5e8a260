"""Laboratory results, kept exactly as received.

The value is a decimal string and its UCUM unit as the lab sent them (``"5.2"``, ``"mg/dL"``),
next to the reference range, the performing lab, the collection time as text and where the
original source message is: its bytes, or (for an import) a reference to the Document holding the
message once and the result's segment in it, so a 20,000-result message is stored once and not
20,000 times. A correction is a new event naming the version it corrects; a unit
conversion is its own event showing both values, the factor and the rule, and never replaces the
value (``domain/quantities.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.base import Record, patient_subject
from domain.checks import identifier, optional_identifier, optional_text, raw_bytes, text
from domain.errors import EntryStateError, InvalidEntry
from domain.quantities import Conversion, Quantity, check_decimal, checked, convert


class LabResult(Record):
    class Received(Record.Created):
        """Version 2 names where the source message is: its bytes (``source_message``), or the
        Document holding it with the result's segment (``source_document_id``,
        ``source_segment``, ``source_set_id``). Version 1 always carried the bytes. Version 3
        no longer keeps its ``subjects`` in the sealed payload: they are its patient's, which
        it names (``subjects`` below), and the header holds them; they were 77 of its bytes,
        the margin between six and seven 20,000-result import events to a PostgreSQL page."""

        class_version = 3

        patient_id: UUID
        loinc_code: str
        test_name: str
        value: str
        unit: str
        reference_range: str | None
        reference_low: str | None
        reference_high: str | None
        abnormal_flag: str | None
        performing_lab: str
        collected_at: str | None
        source_message: bytes | None
        source_format: str
        source_document_id: UUID | None
        source_segment: int | None
        source_set_id: str | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["source_document_id"] = None
            state["source_segment"] = None
            state["source_set_id"] = None

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            # The stamped copy of the subjects: the property below gives the same.
            state.pop("subjects", None)

        @property
        def subjects(self) -> tuple[str, ...]:
            """The ledger subjects (header ``subjects``): the patient's, as ``LabResult``'s
            ``ledger_subjects``; ``Record`` does not stamp a copy onto this event."""
            return (patient_subject(self.patient_id),)

    @classmethod
    def receive(
        cls,
        *,
        patient_id: UUID,
        loinc_code: str,
        test_name: str,
        quantity: Quantity,
        performing_lab: str,
        source_format: str,
        source_message: bytes | None = None,
        source_document_id: UUID | None = None,
        source_segment: int | None = None,
        source_set_id: str | None = None,
        reference_range: str | None = None,
        reference_low: str | None = None,
        reference_high: str | None = None,
        abnormal_flag: str | None = None,
        collected_at: str | None = None,
        id: UUID | None = None,
    ) -> LabResult:
        """``source_message`` is the source's bytes; or, when the message is stored once as a
        Document (an import), ``source_document_id`` names that Document, ``source_segment``
        the result's segment in it (1-based, MSH is 1) and ``source_set_id`` its OBX-1.
        ``id`` is given when the result's id must be the same each time its source is read
        (an import finished by importing its file again); else a new one is drawn."""
        quantity = checked(quantity)
        _check_source(source_message, source_document_id, source_segment, source_set_id)
        low = None if reference_low is None else check_decimal(reference_low, "reference_low")
        high = None if reference_high is None else check_decimal(reference_high, "reference_high")
        return cls._create(
            cls.Received,
            id=None if id is None else identifier(id, "id"),
            patient_id=identifier(patient_id, "patient_id"),
            loinc_code=text(loinc_code, "loinc_code"),
            test_name=text(test_name, "test_name"),
            value=quantity.value,
            unit=quantity.unit,
            reference_range=optional_text(reference_range, "reference_range"),
            reference_low=low,
            reference_high=high,
            abnormal_flag=optional_text(abnormal_flag, "abnormal_flag"),
            performing_lab=text(performing_lab, "performing_lab"),
            collected_at=optional_text(collected_at, "collected_at"),
            source_message=source_message,
            source_format=text(source_format, "source_format"),
            source_document_id=source_document_id,
            source_segment=source_segment,
            source_set_id=source_set_id,
        )

    @event(Received)
    def __init__(
        self,
        patient_id: UUID,
        loinc_code: str,
        test_name: str,
        value: str,
        unit: str,
        reference_range: str | None,
        reference_low: str | None,
        reference_high: str | None,
        abnormal_flag: str | None,
        performing_lab: str,
        collected_at: str | None,
        source_message: bytes | None,
        source_format: str,
        source_document_id: UUID | None,
        source_segment: int | None,
        source_set_id: str | None,
    ) -> None:
        self.patient_id = patient_id
        self.loinc_code = loinc_code
        self.test_name = test_name
        self.value = value
        self.unit = unit
        self.reference_range = reference_range
        self.reference_low = reference_low
        self.reference_high = reference_high
        self.abnormal_flag = abnormal_flag
        self.performing_lab = performing_lab
        self.collected_at = collected_at
        self.source_message = source_message
        self.source_format = source_format
        self.source_document_id = source_document_id
        self.source_segment = source_segment
        self.source_set_id = source_set_id
        self.value_version = 1
        self.history: list[dict[str, Any]] = [{"version": 1, "value": value, "unit": unit}]
        self.conversions: list[dict[str, Any]] = []

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id),)

    @property
    def quantity(self) -> Quantity:
        return Quantity(self.value, self.unit)

    def correct(
        self,
        *,
        quantity: Quantity,
        reason: str,
        corrects_version: int,
        corrected_by: UUID | None = None,
        source_message: bytes | None = None,
        amendment_request_id: UUID | None = None,
        correction_id: UUID | None = None,
    ) -> UUID:
        """Record a corrected value; ``corrects_version`` must be the version holding the value
        now (so a correction made against a stale read is refused). Returns the correction's id."""
        quantity = checked(quantity)
        if type(corrects_version) is not int or corrects_version != self.value_version:
            raise EntryStateError(
                f"lab result {self.id}: corrects_version must be {self.value_version}, "
                "the version that holds the current value"
            )
        new_id = uuid4() if correction_id is None else identifier(correction_id, "correction_id")
        if source_message is not None:
            raw_bytes(source_message, "source_message")
        self._correct(
            correction_id=new_id,
            value=quantity.value,
            unit=quantity.unit,
            reason=text(reason, "reason"),
            corrects_version=corrects_version,
            corrected_by=optional_identifier(corrected_by, "corrected_by"),
            source_message=source_message,
            amendment_request_id=optional_identifier(amendment_request_id, "amendment_request_id"),
        )
        return new_id

    @event("Corrected")
    def _correct(
        self,
        correction_id: UUID,
        value: str,
        unit: str,
        reason: str,
        corrects_version: int,
        corrected_by: UUID | None,
        source_message: bytes | None,
        amendment_request_id: UUID | None,
    ) -> None:
        self.value = value
        self.unit = unit
        # This event's own version: the library sets ``version`` after the body, live and on replay.
        self.value_version = self.version + 1
        self.history.append({"version": self.value_version, "value": value, "unit": unit})

    def record_conversion(self, to_unit: str) -> Conversion:
        """Convert the current value by the conversion table and record both values."""
        conversion = convert(self.quantity, to_unit, self.loinc_code)
        if conversion.converted.unit == self.unit:
            raise InvalidEntry("to_unit is the unit the value already has")
        self._record_conversion(
            from_value=conversion.original.value,
            from_unit=conversion.original.unit,
            of_version=self.value_version,
            to_unit=conversion.converted.unit,
            converted_value=conversion.converted.value,
            factor=conversion.factor,
            rule=conversion.rule,
        )
        return conversion

    @event("ConversionRecorded")
    def _record_conversion(
        self,
        from_value: str,
        from_unit: str,
        of_version: int,
        to_unit: str,
        converted_value: str,
        factor: str,
        rule: str,
    ) -> None:
        self.conversions.append(
            {
                "from_value": from_value,
                "from_unit": from_unit,
                "of_version": of_version,
                "to_unit": to_unit,
                "converted_value": converted_value,
                "factor": factor,
                "rule": rule,
            }
        )


def _check_source(
    message: bytes | None, document_id: UUID | None, segment: int | None, set_id: str | None
) -> None:
    """Exactly one source: the bytes, or a Document and a segment in it."""
    if (message is None) == (document_id is None):
        raise InvalidEntry("give source_message or source_document_id, exactly one")
    if message is not None:
        raw_bytes(message, "source_message")
        if segment is not None or set_id is not None:
            raise InvalidEntry("source_segment and source_set_id go with source_document_id")
        return
    identifier(document_id, "source_document_id")
    if type(segment) is not int or segment < 1:
        raise InvalidEntry("source_segment must be a positive whole number")
    optional_text(set_id, "source_set_id")
