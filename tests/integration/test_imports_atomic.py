"""What makes an import all-or-nothing, on both stores: ``Ledger.save`` of many aggregates is one
transaction, so when the database refuses any one of them, none of the others is in the log."""

from __future__ import annotations

from datetime import date

import pytest
from eventsourcing.persistence import IntegrityError

from api.importing import patients_by_mrn
from domain.imports.summary import ImportRun
from domain.patients import Patient
from domain.users import User
from events.config import StoreConfig
from events.ledger import Ledger
from projections.rebuild import all_projections
from projections.runner import Runner
from tests.support import init_practice, leaves


def patient(mrn: str) -> Patient:
    return Patient.register(
        mrn=mrn, given_name="G", family_name="F", birth_date=date(1990, 1, 1), sex="other"
    )


def test_a_batch_with_one_refused_record_leaves_nothing_of_the_batch(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    try:
        clerk = User.register(name="Cal", role="staff")
        existing = patient("M-0")
        ledger.save(clerk, existing)
        # Two copies of one record: the second one's change collides with the first's in the
        # database (the same stream version twice), as a concurrent writer's would.
        first, second = ledger.repository.get(existing.id), ledger.repository.get(existing.id)
        first.add_identifier(system="urn:x", value="1")
        ledger.save(first)
        second.add_identifier(system="urn:x", value="2")
        before = leaves(ledger)
        batch = [patient(f"M-{n}") for n in range(1, 4)]
        summary = ImportRun.complete(
            kind="patients", source_name="f.csv", source_sha256="0" * 64, items=3,
            rejections=[], created=[p.id for p in batch], accept_valid=False, by=clerk.id,
        )  # fmt: skip
        with pytest.raises(IntegrityError):
            ledger.save(*batch, second, summary)
        assert leaves(ledger) == before
        runner = Runner(ledger, all_projections())
        assert set(patients_by_mrn(ledger, runner)) == {"M-0"}
    finally:
        ledger.close()
