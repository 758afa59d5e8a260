"""A hypothesis state machine over random clinical command sequences, on both stores: the views
built incrementally (caught up at random moments) always equal a replay of the whole log, and
every read shows up in the patient's access report."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    rule,
    run_state_machine_as_test,
)

from domain import appointments as scheduling
from domain.appointments import Appointment
from domain.errors import ConversionNotDefined, DoubleBooking, NoteAlreadySigned, NoteNotSigned
from domain.labs import LabResult
from domain.notes import Note
from domain.patients import Patient
from domain.quantities import Quantity
from events.config import StoreConfig
from events.ledger import Ledger
from projections.access_report import patient_access_report
from projections.reads import Reader, open_chart
from projections.rebuild import runner_for
from tests.integration.test_clinical_views import snapshot
from tests.integration.test_ledger_store import QUIET
from tests.support import init_practice

DAY = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
PROVIDERS = [uuid4(), uuid4()]
decimals = st.from_regex(r"\A-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,4})?\Z")
texts = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9 .]{0,19}\Z")
units = st.sampled_from(["mg/dL", "mmol/L", "g/L", "umol/L"])


def test_incremental_views_equal_a_replay_under_random_commands(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        machine = clinical_machine(ledger)
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=15,
                stateful_step_count=25,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        ledger.close()


def clinical_machine(ledger: Ledger) -> type[RuleBasedStateMachine]:
    reads: Counter[UUID] = Counter()  # across examples: the store is shared by them all

    class Clinic(RuleBasedStateMachine):
        patients = Bundle("patients")
        notes = Bundle("notes")
        labs = Bundle("labs")
        appointments = Bundle("appointments")

        def __init__(self) -> None:
            super().__init__()
            self.runner = runner_for(ledger)
            self.reader = Reader(user_id=uuid4(), purpose_of_use="TREAT", session="s")

        @rule(target=patients, mrn=st.from_regex(r"\A[A-Z0-9]{1,8}\Z"))
        def register(self, mrn: str) -> Patient:
            patient = Patient.register(
                mrn=mrn, given_name="G", family_name="F", birth_date=DAY.date(), sex="unknown"
            )
            ledger.save(patient)
            return patient

        @rule(target=notes, patient=patients, text=texts)
        def draft(self, patient: Patient, text: str) -> Note:
            note = Note.draft(patient_id=patient.id, author_id=uuid4(), kind="progress", text=text)
            ledger.save(note)
            return note

        @rule(note=notes, text=texts)
        def edit(self, note: Note, text: str) -> None:
            if note.is_signed:
                with pytest.raises(NoteAlreadySigned):
                    note.edit(text)
                return
            note.edit(text)
            ledger.save(note)

        @rule(note=notes)
        def sign(self, note: Note) -> None:
            if note.is_signed:
                with pytest.raises(NoteAlreadySigned):
                    note.sign(signed_by=uuid4(), at=DAY)
                return
            note.sign(signed_by=uuid4(), at=DAY)
            ledger.save(note)

        @rule(note=notes, text=texts)
        def addend(self, note: Note, text: str) -> None:
            if not note.is_signed:
                with pytest.raises(NoteNotSigned):
                    note.add_addendum(text=text, reason="r", author_id=uuid4(), at=DAY)
                return
            original = note.text
            note.add_addendum(text=text, reason="r", author_id=uuid4(), at=DAY)
            ledger.save(note)
            assert note.text == original

        @rule(target=labs, patient=patients, value=decimals, unit=units)
        def receive_lab(self, patient: Patient, value: str, unit: str) -> LabResult:
            lab = LabResult.receive(
                patient_id=patient.id,
                loinc_code="2345-7",
                test_name="Glucose",
                quantity=Quantity(value, unit),
                performing_lab="ACME",
                source_message=b"MSH|...",
                source_format="HL7v2",
            )
            ledger.save(lab)
            return lab

        @rule(lab=labs, to_unit=units)
        def convert(self, lab: LabResult, to_unit: str) -> None:
            try:
                lab.record_conversion(to_unit)
            except (ConversionNotDefined, ValueError):
                return
            ledger.save(lab)

        @rule(
            target=appointments,
            patient=patients,
            provider=st.sampled_from(PROVIDERS),
            slot=st.integers(0, 5),
        )
        def book(self, patient: Patient, provider: UUID, slot: int) -> Any:
            start = DAY + timedelta(minutes=30 * slot)
            interval = (start, start + timedelta(minutes=45))
            days = scheduling.provider_days(ledger.repository.get, provider, interval)
            try:
                booked = scheduling.book(
                    days.values(),
                    patient_id=patient.id,
                    provider_id=provider,
                    start=interval[0],
                    end=interval[1],
                    reason="visit",
                )
            except DoubleBooking:
                return None
            ledger.save(*booked)
            return booked[0]

        @rule(appointment=consumes(appointments))
        def cancel(self, appointment: Appointment | None) -> None:
            if appointment is None:
                return
            current = ledger.repository.get(appointment.id)
            days = scheduling.provider_days(
                ledger.repository.get, current.provider_id, (current.start, current.end)
            )
            ledger.save(*scheduling.cancel(current, days.values(), reason="r", at=DAY))

        @rule(patient=patients)
        def read_chart(self, patient: Patient) -> None:
            open_chart(ledger, self.runner, self.reader, patient.id)
            reads[patient.id] += 1

        @rule()
        def catch_up(self) -> None:
            self.runner.catch_up()

        def teardown(self) -> None:
            self.runner.catch_up()
            live = snapshot(ledger)
            self.runner.rebuild()
            assert snapshot(ledger) == live
            for patient_id, count in reads.items():
                report = patient_access_report(ledger.db, str(patient_id))
                assert len(report) == count

    return Clinic
