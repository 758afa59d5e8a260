"""Producing a matter's bundle through the real ledger and checking it with the verifier, on
SQLite and on PostgreSQL. Shared setup (``a_matter``) is used by the tamper and CLI tests too."""

from __future__ import annotations

import contextlib
import hashlib
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pypdf
import pytest

from domain.access import Access
from domain.base import patient_subject, user_subject
from domain.documents import Document
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from events.context import acting
from events.ledger import Ledger
from events.log import tree_size
from legal_hold import holds as lh
from legal_hold.holds import Scope
from legal_hold.production import produce
from legal_hold.production_errors import InvalidProduction, NothingToProduce
from legal_hold.retention import Policy, dispose
from projections.audit import audit_report
from projections.rebuild import runner_for
from verify import bundle_events
from verify import bundle_format as bf
from verify.__main__ import main as verify_main
from verify.bundle import verify_bundle
from verify.canonical import decode
from verify.records import parse_header

PLACED = "legal_hold.holds:Hold.Placed"

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET_NOTE = "PRIVILEGED-ADVICE-7f3a"  # must appear in no file of the bundle once withheld
EMAIL = (
    b"From: Dr Who <who@example.org>\r\nTo: counsel@example.org\r\n"
    b"Subject: Follow-up\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n"
    b"Message-ID: <m1@example.org>\r\n\r\nPlease see the attached results.\r\n"
)
PDF = b"%PDF-1.4\n% a document stored byte for byte\n%%EOF\n"


@dataclass
class Matter:
    matter_id: UUID
    risk: UUID
    patients: tuple[UUID, UUID]
    other_patient: UUID
    custodian: UUID
    privileged_position: int


def positions_of(ledger: Ledger, subject: str) -> list[int]:
    with ledger.db.read() as c:
        c.execute("SELECT position FROM ledger_links WHERE subject = ? ORDER BY seq", (subject,))
        return [row[0] for row in c.fetchall()]


def a_patient(ledger: Ledger, author: UUID, text: str = "Seen today.") -> UUID:
    patient = Patient.register(
        mrn=f"MRN-{uuid4().hex[:6]}",
        given_name="Ada",
        family_name="Example",
        birth_date=date(1970, 5, 1),
        sex="female",
    )
    note = Note.draft(patient_id=patient.id, author_id=author, kind="progress", text=text)
    with acting(user_subject(author), "s1"):
        ledger.save(patient, note)
    return patient.id


def a_matter(ledger: Ledger) -> Matter:
    """Two patients and one custodian in scope; a third patient outside it; one note of the
    first patient is the privileged item to withhold."""
    risk, custodian = uuid4(), uuid4()
    first, second = a_patient(ledger, custodian), a_patient(ledger, custodian)
    other = a_patient(ledger, custodian, "Not in this matter.")
    secret = Note.draft(patient_id=first, author_id=custodian, kind="progress", text=SECRET_NOTE)
    document = Document.store(
        content=PDF,
        sha256=hashlib.sha256(PDF).hexdigest(),
        original_filename="referral.pdf",
        media_type="application/pdf",
        uploader_id=custodian,
        patient_id=first,
    )
    thread = Thread.start(kind="email", topic="results", patient_ids=[second], user_ids=[custodian])
    thread.ingest_email(raw=EMAIL, received_at=T0)
    # The custodian reads the outside patient's chart: in their chain, but not producible.
    read = Access.record(
        user_id=custodian,
        patient_id=other,
        action="access",
        data_category="chart",
        purpose_of_use="TREAT",
        outcome="success",
        at=T0,
    )
    with acting(user_subject(custodian), "s1"):
        ledger.save(secret)
        secret_position = positions_of(ledger, patient_subject(first))[-1]
        ledger.save(document, thread, read)
    matter = lh.open_matter(
        ledger, name="A v. B", number="CV-2026-1", forum="Court", at=T0, by=risk
    )
    lh.place_hold(
        ledger,
        matter_id=matter.id,
        name="records",
        scope=Scope.of(patients=[first, second], custodians=[custodian]),
        at=T0,
        by=risk,
    )
    return Matter(matter.id, risk, (first, second), other, custodian, secret_position)


def bundle_entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def records_of(path: Path) -> list[bf.EventRecord]:
    data = bundle_entries(path)[bf.EVENTS]
    return [bf.parse_record(raw) for _, raw in bf.iter_frames(data)]


def test_a_matter_with_two_patients_and_a_custodian_produces_a_bundle_that_verifies(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = a_matter(ledger)
    out = tmp_path / "production.zip"

    produced = produce(ledger, m.matter_id, out, by=m.risk)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    lines = [str(line) for line in report.lines]
    for subject in (*map(patient_subject, m.patients), user_subject(m.custodian)):
        assert f"OK completeness {subject}: all " in "\n".join(lines)
    assert any(line.startswith("OK inclusion:") for line in lines)
    assert any(line.startswith("OK native natives/") and ".eml" in line for line in lines)
    assert any(line.startswith("OK native natives/") and ".pdf" in line for line in lines)
    assert verify_main(["bundle", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"OK: {out}: {produced.events}")
    # Natives are the stored bytes exactly.
    natives = {n: b for n, b in bundle_entries(out).items() if n.startswith("natives/")}
    assert sorted(natives.values()) == sorted([PDF, EMAIL])


def test_every_event_of_each_subject_is_in_the_bundle_and_only_in_scope_payloads_are_produced(
    ledger: Ledger, tmp_path: Path
) -> None:
    m = a_matter(ledger)
    out = tmp_path / "p.zip"
    produce(ledger, m.matter_id, out, by=m.risk)

    records = {r.position: r for r in records_of(out)}
    size = produced_size(out)
    for subject in (*map(patient_subject, m.patients), user_subject(m.custodian)):
        wanted = {p for p in positions_of(ledger, subject) if p < size}
        assert wanted <= set(records), subject
    other = set(positions_of(ledger, patient_subject(m.other_patient)))
    custodian = set(positions_of(ledger, user_subject(m.custodian)))
    # The custodian's read of the outside patient is in the bundle, without its payload.
    outside_read = sorted(other & custodian)[-1]
    assert records[outside_read].status == bf.OUT_OF_SCOPE
    assert records[outside_read].payload is None
    # The outside patient's own chart is not in the bundle at all.
    assert not (other - custodian) & set(records)
    produced_notes = [
        decode(r.payload) for r in records.values() if r.status == bf.PRODUCED and r.payload
    ]
    assert any(p.get("text") == "Seen today." for p in produced_notes)


def readable(data: bytes) -> bytes:
    """The bytes, plus every deflated PDF stream in them inflated (review PDFs compress text),
    plus a PDF's text as a reader extracts it (its fonts draw glyph numbers, not characters)."""
    inflated = [data]
    for stream in re.findall(rb"stream\r?\n(.*?)\r?\nendstream", data, re.S):
        with contextlib.suppress(zlib.error):  # not every stream is deflated
            inflated.append(zlib.decompress(stream))
    if data.startswith(b"%PDF-"):
        with contextlib.suppress(pypdf.errors.PdfReadError):  # a native need not be a real PDF
            pages = pypdf.PdfReader(io.BytesIO(data)).pages
            inflated.append("\n".join(page.extract_text() for page in pages).encode("utf-8"))
    return b"\n".join(inflated)


def produced_size(path: Path) -> int:
    manifest = decode(bundle_entries(path)[bf.MANIFEST])
    return int(manifest["checkpoint"]["size"])


def test_a_withheld_privileged_item_still_verifies_and_its_payload_is_in_no_file(
    ledger: Ledger, tmp_path: Path
) -> None:
    m = a_matter(ledger)
    out = tmp_path / "p.zip"
    produce(
        ledger, m.matter_id, out, by=m.risk, withhold={m.privileged_position: "attorney-client"}
    )

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    assert any(
        str(line).startswith(f"OK event {m.privileged_position}: privileged (attorney-client)")
        for line in report.lines
    )
    record = next(r for r in records_of(out) if r.position == m.privileged_position)
    assert (record.status, record.payload, record.salt) == (bf.PRIVILEGED, None, None)
    # STORED entries: the archive's raw bytes hold every file's bytes as they are.
    raw = out.read_bytes()
    assert SECRET_NOTE.encode() not in raw
    entries = bundle_entries(out)
    assert any(name.endswith(".pdf") for name in entries)  # the review renderings are there
    for name, data in entries.items():
        assert SECRET_NOTE.encode() not in readable(data), name
    # Proof that the check above can fail: the same matter without the claim shows the text.
    again = tmp_path / "unwithheld.zip"
    produce(ledger, m.matter_id, again, by=m.risk)
    assert SECRET_NOTE.encode() in again.read_bytes()
    shown = [n for n, d in bundle_entries(again).items() if SECRET_NOTE.encode() in readable(d)]
    assert any(n.endswith(".pdf") for n in shown), shown


def test_disposed_events_are_produced_as_disposed_and_still_verify(
    ledger: Ledger, tmp_path: Path
) -> None:
    risk = uuid4()
    gone = a_patient(ledger, uuid4())
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 30)
    dispose(ledger, gone, policy=Policy.simple("p", 7, 3), by=risk, at=later)
    # A later matter names the disposed patient: what is left of them is produced.
    matter = lh.open_matter(ledger, name="C v. D", number="CV-2", forum=None, at=T0, by=risk)
    lh.place_hold(
        ledger, matter_id=matter.id, name="h", scope=Scope.of(patients=[gone]), at=T0, by=risk
    )
    out = tmp_path / "p.zip"
    produce(ledger, matter.id, out, by=risk)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    found = [(r.status, parse_header(r.header).type) for r in records_of(out)]
    # Registered and the note: disposed; then the evidence a reader checks them and the scope
    # against (the Disposed event, the hold's Placed), produced; the disclosure read: produced.
    assert found == [
        (bf.DISPOSED, "domain.patients:Patient.Registered"),
        (bf.DISPOSED, "domain.notes:Note.Drafted"),
        (bf.PRODUCED, "legal_hold.retention:Disposal.Disposed"),
        (bf.PRODUCED, "legal_hold.holds:Hold.Placed"),
        (bf.PRODUCED, "domain.access:Access.Recorded"),
    ]


def test_producing_is_a_ledger_event_with_the_bundles_hash_in_the_audit_view(
    ledger: Ledger, tmp_path: Path
) -> None:
    m = a_matter(ledger)
    out = tmp_path / "p.zip"
    produced = produce(ledger, m.matter_id, out, by=m.risk)

    assert produced.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    production = ledger.repository.get(produced.production_id)
    assert production.bundle_sha256 == produced.sha256
    assert production.produced_by == m.risk and production.matter_id == m.matter_id
    runner_for(ledger).catch_up()
    rows = audit_report(ledger.db, user_id=str(m.risk))
    kinds = {(r["event_type"], r["data_category"]) for r in rows}
    assert ("legal_hold.productions:Production.Produced", "legal holds") in kinds
    # The production is recorded as a disclosure of each patient in scope.
    for patient in m.patients:
        assert any(r["action"] == "disclose" and r["patient_id"] == str(patient) for r in rows), (
            patient
        )


def test_a_consistency_proof_from_an_earlier_checkpoint_verifies(
    ledger: Ledger, tmp_path: Path
) -> None:
    earlier = ledger.checkpointer.issue().size
    m = a_matter(ledger)
    out = tmp_path / "p.zip"
    produce(ledger, m.matter_id, out, by=m.risk, since=earlier)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    assert any(str(line).startswith("OK consistency:") for line in report.lines)


def test_bad_requests_are_refused_before_anything_is_written(
    ledger: Ledger, tmp_path: Path
) -> None:
    m = a_matter(ledger)
    empty = lh.open_matter(ledger, name="E", number="E-1", forum=None, at=T0, by=m.risk)
    nobody = lh.open_matter(ledger, name="N", number="N-1", forum=None, at=T0, by=m.risk)
    lh.place_hold(
        ledger, matter_id=nobody.id, name="h", scope=Scope.of(patients=[uuid4()]), at=T0, by=m.risk
    )
    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM ledger_leaves")
        before = c.fetchone()

    with pytest.raises(InvalidProduction, match="not events of the subjects in scope"):
        produce(ledger, m.matter_id, tmp_path / "a.zip", by=m.risk, withhold={10**6: "work"})
    with pytest.raises(InvalidProduction, match="must be 1 to 200 characters"):
        produce(ledger, m.matter_id, tmp_path / "a.zip", by=m.risk, withhold={1: " "})
    with pytest.raises(InvalidProduction, match="no checkpoint at size 999999"):
        produce(ledger, m.matter_id, tmp_path / "a.zip", by=m.risk, since=999_999)
    (tmp_path / "exists.zip").write_bytes(b"x")
    with pytest.raises(InvalidProduction, match="exists already"):
        produce(ledger, m.matter_id, tmp_path / "exists.zip", by=m.risk)
    with pytest.raises(NothingToProduce):
        produce(ledger, empty.id, tmp_path / "a.zip", by=m.risk)
    with pytest.raises(NothingToProduce, match="no event of its patients or custodians"):
        produce(ledger, nobody.id, tmp_path / "a.zip", by=m.risk)

    with ledger.db.read() as c:
        c.execute("SELECT COUNT(*) FROM ledger_leaves")
        after = c.fetchone()
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists.zip", "home"]


def test_checking_records_in_worker_processes_gives_the_same_lines(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = a_matter(ledger)
    out = tmp_path / "p.zip"
    produce(ledger, m.matter_id, out, by=m.risk, withhold={m.privileged_position: "work"})
    alone = [str(line) for line in verify_bundle(out).lines]
    # Small spans, and a pool however few the records, so several workers share the work.
    monkeypatch.setattr(bundle_events, "PARALLEL_AFTER", 1)
    monkeypatch.setattr(bundle_events, "SPAN", 3)

    assert [str(line) for line in verify_bundle(out, workers=2).lines] == alone


def test_a_patient_in_scope_with_no_record_is_proven_absent(ledger: Ledger, tmp_path: Path) -> None:
    m = a_matter(ledger)
    nobody = uuid4()
    hold = lh.all_holds(ledger, m.matter_id)[0]
    lh.change_scope(
        ledger,
        hold.id,
        scope=Scope.of(patients=[*m.patients, nobody], custodians=[m.custodian]),
        reason="a patient named in the complaint",
        at=T0,
        by=m.risk,
    )
    out = tmp_path / "p.zip"
    produce(ledger, m.matter_id, out, by=m.risk)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    lines = [str(line) for line in report.lines]
    assert any(line.startswith(f"OK absence patient:{nobody}: no event") for line in lines), lines
    assert decode(bundle_entries(out)[bf.MANIFEST])["absent"] == [f"patient:{nobody}"]


def test_a_hold_widened_partly_released_and_released_is_produced_as_its_events_say(
    ledger: Ledger, tmp_path: Path
) -> None:
    """BUNDLE_FORMAT v2 §2.3: the verifier derives each hold from its events, released holds
    included (with the scope they had when released), and holds the manifest to it."""
    m = a_matter(ledger)
    (hold,) = lh.all_holds(ledger, m.matter_id)
    first, second = m.patients
    wider = Scope.of(patients=[first, second, m.other_patient], custodians=[m.custodian])
    lh.change_scope(ledger, hold.id, scope=wider, reason="r", at=T0, by=m.risk)
    lh.release_hold(ledger, hold.id, reason="r", at=T0, by=m.risk, patients=[second])
    lh.release_hold(ledger, hold.id, reason="done", at=T0, by=m.risk)
    out = tmp_path / "p.zip"
    produce(ledger, m.matter_id, out, by=m.risk)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    lines = "\n".join(map(str, report.lines))
    assert f"OK hold {hold.id}: released, 2 patient(s), 1 custodian(s), placed " in lines
    assert "4 event(s)" in lines
    (stated,) = decode(bundle_entries(out)[bf.MANIFEST])["holds"]
    assert stated["active"] is False
    assert stated["scope"]["patients"] == sorted([str(first), str(m.other_patient)])
    produced = {r.position for r in records_of(out) if r.status == bf.PRODUCED}
    assert set(positions_of(ledger, patient_subject(m.other_patient))) & produced
    assert not set(positions_of(ledger, patient_subject(second))) & produced - set(
        positions_of(ledger, user_subject(m.custodian))
    )


def test_a_custodians_read_of_an_outside_patient_since_disposed_of_is_out_of_scope(
    ledger: Ledger, tmp_path: Path
) -> None:
    """BUNDLE_FORMAT v2 §2.1: scope before disposal. A patient disposed of before the hold was
    placed is not the matter's: the custodian's read of them is out-of-scope, not disposed (a
    disposed label would need their Disposed event, which is no evidence of this matter)."""
    risk, custodian = uuid4(), uuid4()
    mine, other = a_patient(ledger, custodian), a_patient(ledger, uuid4())
    read = Access.record(
        user_id=custodian,
        patient_id=other,
        action="access",
        data_category="chart",
        purpose_of_use="TREAT",
        outcome="success",
        at=T0,
    )
    with acting(user_subject(custodian), "s1"):
        ledger.save(read)
    later = datetime.now(UTC).replace(year=datetime.now(UTC).year + 30)
    dispose(ledger, other, policy=Policy.simple("p", 7, 3), by=risk, at=later)
    matter = lh.open_matter(ledger, name="E v. F", number="CV-3", forum=None, at=T0, by=risk)
    scope = Scope.of(patients=[mine], custodians=[custodian])
    lh.place_hold(ledger, matter_id=matter.id, name="h", scope=scope, at=T0, by=risk)
    out = tmp_path / "p.zip"
    produce(ledger, matter.id, out, by=risk)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    position = sorted(
        set(positions_of(ledger, patient_subject(other)))
        & set(positions_of(ledger, user_subject(custodian)))
    )[-1]
    (record,) = [r for r in records_of(out) if r.position == position]
    assert record.status == bf.OUT_OF_SCOPE


def test_a_hold_event_cannot_be_withheld_and_nothing_is_written(
    ledger: Ledger, tmp_path: Path
) -> None:
    """The hold events are what a reader derives the scope from (BUNDLE_FORMAT v2 §2.2)."""
    m = a_matter(ledger)
    with ledger.db.read() as c:
        size_before = tree_size(c)
        c.execute("SELECT position FROM stored_events WHERE topic = ?", (PLACED,))
        placed = max(row[0] for row in c.fetchall())
    out = tmp_path / "p.zip"
    with pytest.raises(InvalidProduction, match="hold or disposal events"):
        produce(ledger, m.matter_id, out, by=m.risk, withhold={placed: "work product"})
    assert not out.exists()
    with ledger.db.read() as c:
        assert tree_size(c) == size_before
