"""Legal holds and disposal through the real ledger, on SQLite and on PostgreSQL."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from api.cli import main as cli_main
from domain.notes import Note
from domain.patients import Patient
from events.config import StoreConfig
from events.keys import KeyError_, aead_open, unwrap_key
from events.ledger import Ledger
from events.sealing import NONCE_SIZE, aad
from legal_hold import holds as lh
from legal_hold.errors import NotEligible, UnderLegalHold
from legal_hold.holds import Scope
from legal_hold.retention import (
    Policy,
    disposal_run,
    dispose,
    disposed_events,
)
from projections.audit import audit_report
from projections.chart import chart
from projections.rebuild import rebuild, runner_for
from tests.conftest import pg_connect
from verify.canonical import decode
from verify.records import parse_header, split_record

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RISK = uuid4()
POLICY = Policy.simple("adults-7y-minors-majority+3y", adult_years=7, minor_years=3)
LATER = datetime.now(UTC) + timedelta(days=8 * 366)  # past every adult's retention


def a_patient(ledger: Ledger, born: date = date(1970, 5, 1)) -> UUID:
    patient = Patient.register(
        mrn=f"MRN-{uuid4().hex[:6]}",
        given_name="Ada",
        family_name="Example",
        birth_date=born,
        sex="female",
    )
    note = Note.draft(patient_id=patient.id, author_id=uuid4(), kind="progress", text="SECRET-HX")
    ledger.save(patient, note)
    return patient.id


def a_matter(ledger: Ledger, number: str = "CV-1") -> UUID:
    return lh.open_matter(ledger, name="A v. B", number=number, forum="Court", at=T0, by=RISK).id


def test_overlapping_holds_partial_release_and_disposal_after_the_last_release(
    ledger: Ledger,
) -> None:
    held, free = a_patient(ledger), a_patient(ledger)
    first = lh.place_hold(
        ledger,
        matter_id=a_matter(ledger, "CV-1"),
        name="first",
        scope=Scope.of(patients=[held, uuid4()]),
        at=T0,
        by=RISK,
    )
    second = lh.place_hold(
        ledger,
        matter_id=a_matter(ledger, "CV-2"),
        name="second",
        scope=Scope.of(patients=[held]),
        at=T0,
        by=RISK,
    )
    run = {c.patient_id: c for c in disposal_run(ledger, POLICY, at=LATER)}
    assert run[held].eligible and not run[held].disposable
    assert set(run[held].held_by) == {first.id, second.id}
    assert run[free].disposable

    with pytest.raises(UnderLegalHold, match="2 active legal hold") as refused:
        dispose(ledger, held, policy=POLICY, by=RISK, at=LATER)
    assert "Ada" not in str(refused.value) and "Example" not in str(refused.value)
    lh.release_hold(ledger, first.id, patients=[held], reason="dropped", at=T0 + DAY, by=RISK)
    with pytest.raises(UnderLegalHold, match="1 active legal hold"):
        dispose(ledger, held, policy=POLICY, by=RISK, at=LATER)
    lh.release_hold(ledger, second.id, reason="settled", at=T0 + DAY, by=RISK)
    disposal = dispose(ledger, held, policy=POLICY, by=RISK, at=LATER)
    assert disposal.policy_name == POLICY.name

    # Each refusal is a ledger event of its own, about the acting user only.
    refusals = headers_of(ledger, "legal_hold.retention:DisposalRefusal.Refused")
    assert len(refusals) == 2 and {h.subjects for h in refusals} == {(f"user:{RISK}",)}
    (disposed,) = headers_of(ledger, "legal_hold.retention:Disposal.Disposed")
    assert disposed.subjects == (f"user:{RISK}",)
    # The unheld patient is untouched; the held one cannot be disposed of twice.
    assert ledger.repository.get(free).given_name == "Ada"
    assert held not in {c.patient_id for c in disposal_run(ledger, POLICY, at=LATER)}


def test_a_disposal_the_policy_does_not_yet_allow_is_refused(ledger: Ledger) -> None:
    minor = a_patient(ledger, born=date.today() - timedelta(days=365 * 10))
    with pytest.raises(NotEligible, match="kept until"):
        dispose(ledger, minor, policy=POLICY, by=RISK, at=LATER)


def headers_of(ledger: Ledger, topic: str) -> list:  # type: ignore[type-arg]
    with ledger.db.read() as c:
        c.execute("SELECT state FROM stored_events WHERE topic = ?", (topic,))
        return [parse_header(split_record(bytes(r[0]))[0]) for r in c.fetchall()]


def test_after_disposal_the_log_verifies_views_forget_and_nothing_opens_the_payloads(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    patient, other = a_patient(ledger), a_patient(ledger)
    runner = runner_for(ledger)
    runner.catch_up()
    assert chart(ledger.db, patient)
    dispose(ledger, patient, policy=POLICY, by=RISK, at=LATER)
    rebuild(ledger)

    # Views: no content for the disposed patient, the other's chart intact, metadata kept.
    assert chart(ledger.db, patient) == []
    assert chart(ledger.db, other)
    audit = [r for r in audit_report(ledger.db) if r["patient_id"] == str(patient)]
    own = [r for r in audit if not r["event_type"].startswith("legal_hold.")]
    assert len(own) == 2  # registration and note: their metadata outlives their content
    # and the disposal itself names the patient (in its payload, never as a subject)
    assert {r["event_type"] for r in audit if r not in own} == {
        "legal_hold.retention:Disposal.Disposed",
        "legal_hold.retention:DisposalRegister.Listed",
    }
    described = disposed_events(ledger, patient)
    assert [d.type for d in described] == [
        "domain.patients:Patient.Registered",
        "domain.notes:Note.Drafted",
    ]
    assert described[0].disposal == (
        f"disposed under policy {POLICY.name} on {LATER.date()} by user {RISK}"
    )

    # `chartledger verify` passes and counts the payloads as disposed.
    capsys.readouterr()
    assert cli_main(["verify"]) == 0
    assert "2 disposed" in capsys.readouterr().out

    # From the raw tables: no key row for the patient, and no key the master key unwraps
    # opens any of the patient's sealed payloads.
    rows, keys = raw_tables(store_config)
    mine = [(h, sealed) for h, sealed in rows if f"patient:{patient}" in h.subjects]
    assert len(mine) == 2
    assert not [k for k in keys if k[1] == f"patient:{patient}"]
    assert not {h.key for h, _ in mine} & {name for name, _, _ in keys}
    master = ledger.master_key
    unwrapped = []
    for name, subject, wrapped in keys:
        with contextlib.suppress(KeyError_):
            unwrapped.append(unwrap_key(master, wrapped, name=name, subject=subject))
    assert len(unwrapped) == len(keys)
    for header, sealed in mine:
        for key in unwrapped:
            assert (
                aead_open(
                    key,
                    sealed[:NONCE_SIZE],
                    sealed[NONCE_SIZE:],
                    aad(header.stream, header.version),
                )
                is None
            )
    # And through the application: the patient aggregate no longer loads.
    with pytest.raises(LookupError):
        ledger.repository.get(patient)


def raw_tables(config: StoreConfig) -> tuple[list, list]:  # type: ignore[type-arg]
    """(header, sealed) of every stored event and (name, subject, wrapped) of every key, read
    with the database driver alone."""
    if config.database_url is None:
        conn = sqlite3.connect(Path(config.sqlite_path))
        try:
            events = conn.execute("SELECT state FROM stored_events").fetchall()
            keys = conn.execute("SELECT name, subject, wrapped FROM ledger_data_keys").fetchall()
        finally:
            conn.close()
    else:
        schema = config.database_url.rpartition("schema=")[2]
        with pg_connect() as pg:
            events = pg.execute(f'SELECT state FROM "{schema}".stored_events').fetchall()
            keys = pg.execute(
                f'SELECT name, subject, wrapped FROM "{schema}".ledger_data_keys'
            ).fetchall()
    rows = []
    for (state,) in events:
        record = decode(bytes(state))
        rows.append((parse_header(record["header"]), record["sealed"]))
    return rows, [(n, s, bytes(w)) for n, s, w in keys]
