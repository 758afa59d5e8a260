"""A hold that names only custodians preserves every patient record those custodians acted in
or are subjects of; disposal gives up with its own error when the record keeps changing."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain.base import user_subject
from domain.notes import Note
from events.context import acting
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.errors import DisposalContended, NotEligible, UnderLegalHold
from legal_hold.holds import Scope
from legal_hold.retention import disposal_run, dispose
from tests.integration.test_legal_hold import LATER, POLICY, RISK, T0, a_matter, a_patient


def note_by(ledger: Ledger, patient_id: UUID, author: UUID) -> None:
    with acting(user_subject(author), "test-session"):
        ledger.save(Note.draft(patient_id=patient_id, author_id=author, kind="progress", text="x"))


def test_a_custodian_only_hold_preserves_the_records_its_custodians_acted_in(
    ledger: Ledger,
) -> None:
    custodian, other = uuid4(), uuid4()
    touched, untouched = a_patient(ledger), a_patient(ledger)
    note_by(ledger, touched, custodian)
    note_by(ledger, untouched, other)
    hold = lh.place_hold(
        ledger,
        matter_id=a_matter(ledger),
        name="custodian only",
        scope=Scope.of(custodians=[custodian, other]),
        at=T0,
        by=RISK,
    )
    run = {c.patient_id: c for c in disposal_run(ledger, POLICY, at=LATER)}
    assert run[touched].held_by == (hold.id,) and run[untouched].held_by == (hold.id,)
    with pytest.raises(UnderLegalHold, match="1 active legal hold"):
        dispose(ledger, touched, policy=POLICY, by=RISK, at=LATER)

    # Releasing one custodian frees the records only they touched; the other's stay held.
    lh.release_hold(ledger, hold.id, custodians=[other], reason="not involved", at=T0, by=RISK)
    dispose(ledger, untouched, policy=POLICY, by=RISK, at=LATER)
    with pytest.raises(UnderLegalHold):
        dispose(ledger, touched, policy=POLICY, by=RISK, at=LATER)
    lh.release_hold(ledger, hold.id, reason="settled", at=T0, by=RISK)
    dispose(ledger, touched, policy=POLICY, by=RISK, at=LATER)


def test_a_disposal_that_keeps_conflicting_gives_up_without_disposing(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    patient = a_patient(ledger)
    save = ledger.save

    def conflicting(*records, **options):  # type: ignore[no-untyped-def]
        if "after_append" in options:
            raise IntegrityError("simulated: another writer got there first")
        return save(*records, **options)

    monkeypatch.setattr(ledger, "save", conflicting)
    with pytest.raises(DisposalContended, match="kept changing during 5 attempts") as gave_up:
        dispose(ledger, patient, policy=POLICY, by=RISK, at=LATER)
    assert not isinstance(gave_up.value, NotEligible)
    assert "Ada" not in str(gave_up.value)
    monkeypatch.undo()
    assert ledger.repository.get(patient).given_name == "Ada"
