"""`chartledger import ...` on both stores: good files land whole, broken files are reported row
by row and write nothing, and ``--accept-valid`` writes exactly the valid items."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from api.cli import main
from api.importing import MAX_LAB_RESULTS
from domain.care_team import CareAssignment
from domain.documents import Document
from domain.imports.summary import ImportRun
from domain.labs import LabResult
from domain.messages import Thread
from domain.patients import Patient
from domain.users import User
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from tests.support import init_practice, oru_r01

FIXTURES = Path(__file__).parent.parent / "fixtures" / "imports"
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Setup:
    config: StoreConfig
    staff: User
    clinician: User
    outsider: User
    jane: Patient
    rich: Patient

    def leaves(self) -> int:
        ledger = Ledger(self.config)
        try:
            with ledger.db.read() as c:
                c.execute("SELECT COUNT(*) FROM ledger_leaves")
                row = c.fetchone()
        finally:
            ledger.close()
        assert row is not None
        return int(row[0])

    def summary(self, out: str) -> tuple[ImportRun, Ledger]:
        import_id = UUID(out.strip().splitlines()[-1].rsplit("(import ", 1)[1].rstrip(")"))
        ledger = Ledger(self.config)
        return ledger.repository.get(import_id), ledger


@pytest.fixture
def practice(store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> Setup:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    staff = User.register(name="Sam Staff", role="staff")
    clinician = User.register(name="Cleo Clinician", role="clinician")
    outsider = User.register(name="Otto Other", role="clinician")
    jane = Patient.register(
        mrn="MRN-1001", given_name="J", family_name="D", birth_date=date(1980, 3, 14), sex="female"
    )
    rich = Patient.register(
        mrn="MRN-1002", given_name="R", family_name="R", birth_date=date(1970, 1, 1), sex="male"
    )
    taken = Patient.register(
        mrn="A-0001", given_name="T", family_name="T", birth_date=date(2003, 1, 2), sex="female"
    )
    ledger.save(staff, clinician, outsider)
    ledger.save(jane, rich, taken)
    with acting(f"user:{staff.id}", "test"):  # staff put the clinician in their care
        ledger.save(
            *(
                CareAssignment.assign(patient_id=p.id, user_id=clinician.id, by=staff.id, at=AT)
                for p in (jane, rich, taken)
            )
        )
    ledger.close()
    return Setup(store_config, staff, clinician, outsider, jane, rich)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["import", *args])
    out, err = capsys.readouterr()
    return code, out, err


def fixture(name: str) -> str:
    return str(FIXTURES / name)


BROKEN_PATIENT_LINES = [
    "REJECTED row 2: mrn is also on row 5",
    "REJECTED row 3: birth_date (column 'DOB') is not a date in the format %m/%d/%Y",
    "REJECTED row 4: birth_date (column 'DOB') is empty; "
    "sex (column 'Gender') is not one of the mapped codes F, M, U",
    "REJECTED row 5: mrn is also on row 2",
    "REJECTED row 6: has 5 fields, the header has 6",
    "REJECTED row 8: mrn already belongs to a patient of this practice",
]


def test_a_good_billing_csv_imports_every_patient_with_its_summary(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    code, out, err = run(
        capsys, "patients", fixture("patients_good.csv"), "--map", fixture("billing_map.json"),
        "--by", str(practice.staff.id),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith("Imported 3 of 3 patients item(s), 0 rejected (import ")
    assert practice.leaves() == before + 7  # three registrations, their MRN claims, the summary
    summary, ledger = practice.summary(out)
    try:
        assert (summary.kind, summary.items, summary.accepted, summary.rejected) == (
            "patients", 3, 3, 0,
        )  # fmt: skip
        data = (FIXTURES / "patients_good.csv").read_bytes()
        assert summary.source_sha256 == hashlib.sha256(data).hexdigest()
        assert summary.by == practice.staff.id
        patients = [ledger.repository.get(i) for i in summary.created]
        assert [(p.mrn, p.family_name, p.given_name, p.birth_date, p.sex) for p in patients] == [
            ("A-1001", "Doe", "Jane", date(1980, 3, 14), "female"),
            ("A-1002", "Roe", "Rich", date(1970, 12, 1), "male"),
            ("A-1003", "Poe, Jr.", "Ed", date(1976, 7, 4), "unknown"),
        ]
    finally:
        ledger.close()


def test_a_broken_csv_is_reported_row_by_row_and_writes_nothing(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    code, out, err = run(
        capsys, "patients", fixture("patients_broken.csv"), "--map", fixture("billing_map.json"),
        "--by", str(practice.staff.id),
    )  # fmt: skip
    assert code == 2
    assert out.splitlines() == BROKEN_PATIENT_LINES
    assert err == (
        "chartledger: refused: patients import refused: 6 of 7 item(s) rejected, nothing written\n"
    )
    assert practice.leaves() == before


def test_accept_valid_writes_exactly_the_valid_rows_in_one_go(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    code, out, _ = run(
        capsys, "patients", fixture("patients_broken.csv"), "--map", fixture("billing_map.json"),
        "--by", str(practice.staff.id), "--accept-valid",
    )  # fmt: skip
    assert code == 0
    assert out.splitlines()[:-1] == BROKEN_PATIENT_LINES
    assert out.splitlines()[-1].startswith("Imported 1 of 7 patients item(s), 6 rejected")
    assert practice.leaves() == before + 3  # the registration, its MRN claim, the summary
    summary, ledger = practice.summary(out)
    try:
        [created] = summary.created
        assert ledger.repository.get(created).mrn == "A-2006"
        assert summary.rejections == [
            line.removeprefix("REJECTED ") for line in BROKEN_PATIENT_LINES
        ]
    finally:
        ledger.close()


def test_a_clinician_cannot_import_patients_and_a_bad_map_is_one_line(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = practice.leaves()
    args = ["patients", fixture("patients_good.csv"), "--map", fixture("billing_map.json")]
    code, _, err = run(capsys, *args, "--by", str(practice.clinician.id))
    assert (code, err) == (2, f"chartledger: refused: user {practice.clinician.id} is not an "
                              "active owner or staff\n")  # fmt: skip
    bad_map = tmp_path / "map.json"
    bad_map.write_text('{"columns": {"mrn": "Chart#"}, "date_format": "%m/%d/%Y"}')
    code, _, err = run(
        capsys, "patients", fixture("patients_good.csv"), "--map", str(bad_map),
        "--by", str(practice.staff.id),
    )  # fmt: skip
    assert code == 2
    assert err == (
        "chartledger: refused: columns must map exactly mrn, family_name, given_name, "
        "birth_date, sex (missing family_name, given_name, birth_date, sex)\n"
    )
    assert practice.leaves() == before


def test_good_hl7_results_arrive_exactly_with_the_message_kept_as_a_document(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    code, out, err = run(
        capsys, "labs", fixture("oru_good.hl7"), "--by", str(practice.clinician.id)
    )
    assert (code, err) == (0, "")
    assert out.startswith("Imported 2 of 2 labs item(s), 0 rejected")
    assert practice.leaves() == before + 6  # 2 documents, 3 results, the summary
    summary, ledger = practice.summary(out)
    try:
        first, second = summary.links
        document = ledger.repository.get(first["document_id"])
        assert isinstance(document, Document)
        assert document.media_type == "x-application/hl7-v2+er7"
        assert document.content.startswith(b"MSH|^~\\&|LABSYS|Acme Lab|")
        assert document.sha256 == hashlib.sha256(document.content).hexdigest()
        assert document.sha256 == first["document_sha256"]
        assert document.patient_id == practice.jane.id
        assert document.content + b"" in (FIXTURES / "oru_good.hl7").read_bytes()
        glucose, creatinine = (ledger.repository.get(i) for i in first["lab_ids"])
        assert isinstance(glucose, LabResult)
        assert (glucose.value, glucose.unit) == ("5.2", "mg/dL")
        assert (glucose.reference_range, glucose.reference_low, glucose.reference_high) == (
            "3.9-5.5", "3.9", "5.5",
        )  # fmt: skip
        assert glucose.performing_lab == "Acme Reference Lab"  # OBX-23
        assert glucose.collected_at == "20261120071500"  # OBX-14, as sent
        # Each result names the message's Document and its own segment, and carries no copy.
        segments = document.content.split(b"\r")
        assert (glucose.source_message, glucose.source_document_id) == (None, document.id)
        assert segments[glucose.source_segment - 1].startswith(b"OBX|1|NM|2345-7^")
        assert segments[creatinine.source_segment - 1].startswith(b"OBX|2|NM|2160-0^")
        assert (glucose.source_set_id, creatinine.source_set_id) == ("1", "2")
        assert (creatinine.value, creatinine.performing_lab) == ("0.90", "Acme Lab")  # MSH-4
        [leukocytes] = (ledger.repository.get(i) for i in second["lab_ids"])
        assert (leukocytes.value, leukocytes.unit) == ("7.4", "10^3/uL")  # \S\ is ^
        assert leukocytes.patient_id == practice.rich.id
        assert leukocytes.collected_at == "20261120080000"  # OBR-7 when OBX-14 is empty
    finally:
        ledger.close()


BROKEN_LAB_LINES = [
    "REJECTED message 1: segment 4 (OBX): OBX-6 unit is not a UCUM unit: it has a symbol not "
    "in UCUM's table of units (case matters: mg, not MG); segment 5 (OBX): OBX-5 value is not a "
    "decimal string (sign, digits, optional fraction)",
    "REJECTED message 2: MSH-9 is not ORU^R01: only lab result messages are imported",
    "REJECTED message 3: segment 2 (PID): PID-3 names no patient of this practice",
    "REJECTED message 4: segment 4 (OBX): has no OBX-11 (result status): the segment is cut off",
]


def test_broken_hl7_is_reported_message_by_message_and_writes_nothing(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    by = ["--by", str(practice.clinician.id)]
    code, out, err = run(capsys, "labs", fixture("oru_broken.hl7"), *by)
    assert code == 2
    assert out.splitlines() == BROKEN_LAB_LINES
    assert "4 of 4 item(s) rejected, nothing written" in err
    code, out, _ = run(capsys, "labs", fixture("oru_broken.hl7"), *by, "--accept-valid")
    assert code == 2 and out.splitlines() == BROKEN_LAB_LINES  # nothing valid: nothing written
    assert practice.leaves() == before


def test_a_file_over_the_results_bound_is_refused_whole_before_parsing(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """More OBX segments than one import takes (``MAX_LAB_RESULTS``) is refused whole, with
    ``--accept-valid`` too: one line saying so, exit 2, nothing written. The good fixture's two
    messages and one more, of as many results as the bound allows (20,000 results are imported
    in tests/e2e/test_large_import.py)."""
    path = tmp_path / "too-many.hl7"
    bulk = oru_r01("MRN-1001", MAX_LAB_RESULTS, control_id="BIG")
    path.write_bytes((FIXTURES / "oru_good.hl7").read_bytes() + bulk)
    before = practice.leaves()
    by = ["--by", str(practice.clinician.id)]
    code, out, err = run(capsys, "labs", str(path), *by, "--accept-valid")
    assert code == 2
    reason = (
        f"the file holds {MAX_LAB_RESULTS + 3} OBX segments, more than the {MAX_LAB_RESULTS} "
        "one import takes: split it into smaller files"
    )
    assert out.splitlines() == [f"REJECTED message {n}: {reason}" for n in (1, 2, 3)]
    assert "3 of 3 item(s) rejected, nothing written" in err
    assert practice.leaves() == before


def test_a_clinician_without_care_cannot_import_results_for_the_patient(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    code, out, _ = run(capsys, "labs", fixture("oru_good.hl7"), "--by", str(practice.outsider.id))
    assert code == 2
    reason = "no care relationship with the patient PID-3 names (an owner may import)"
    assert out.splitlines() == [f"REJECTED message 1: {reason}", f"REJECTED message 2: {reason}"]
    # Nothing of the import; a refusal per patient named, for the audit view (issue 17).
    assert practice.leaves() == before + 2


def test_emails_thread_by_their_references_and_keep_their_bytes(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    files = [fixture("email_question.eml"), fixture("email_answer.eml")]
    code, out, err = run(
        capsys, "email", *files, "--patient", str(practice.jane.id),
        "--by", str(practice.clinician.id),
    )  # fmt: skip
    assert (code, err) == (0, "")
    assert practice.leaves() == before + 4  # thread started, two emails, the summary
    summary, ledger = practice.summary(out)
    try:
        [thread_id] = summary.created
        thread = ledger.repository.get(thread_id)
        assert isinstance(thread, Thread) and thread.kind == "email"
        assert thread.topic == "Question about my bill"
        assert [m["raw"] for m in thread.messages] == [Path(f).read_bytes() for f in files]
        headers = [vars(e)["headers"] for e in list(ledger.events.get(thread_id))[1:]]
        assert ["Date", "Tue, 17 Nov 2026 09:12:44 -0500"] in [
            [n, v.strip()] for n, v in headers[0]
        ]
    finally:
        ledger.close()


def test_malformed_email_and_bad_sms_times_are_reported_and_write_nothing(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    patient = ["--patient", str(practice.jane.id), "--by", str(practice.clinician.id)]
    files = [
        fixture("email_question.eml"),
        fixture("email_no_headers.eml"),
        fixture("email_no_date.eml"),
    ]
    code, out, _ = run(capsys, "email", *files, *patient)
    assert code == 2
    assert out.splitlines() == [
        "REJECTED email_no_headers.eml: raw email line 1 is not a header field (RFC 5322 §2.2)",
        "REJECTED email_no_date.eml: has no Date: header field",
    ]
    code, out, _ = run(capsys, "sms", fixture("sms_broken.xml"), *patient)
    assert code == 2
    assert out.splitlines() == [
        "REJECTED sms 2 (line 4): date is not a time in milliseconds since 1970",
        "REJECTED sms 3 (line 5): address is missing or empty; date_sent is not a time in "
        "milliseconds since 1970; type is not 1 (received) or 2 (sent)",
        "REJECTED mms 4 (line 6): MMS is not imported",
    ]
    assert practice.leaves() == before


def test_an_sms_export_lands_one_thread_per_number_with_its_metadata(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(
        capsys, "sms", fixture("sms_good.xml"), "--patient", str(practice.jane.id),
        "--by", str(practice.clinician.id),
    )  # fmt: skip
    assert code == 0
    summary, ledger = practice.summary(out)
    try:
        first, second = (ledger.repository.get(t) for t in summary.created)
        assert [m["body"] for m in first.messages] == [
            "Can I move my appointment to Friday?",
            "Yes, Friday 10:00 works.",
        ]
        events = [e for e in ledger.events.get(first.id) if type(e).__name__ == "SmsIngested"]
        received = vars(events[0])
        assert (received["from_number"], received["to_number"]) == ("+15551230001", "this-phone")
        assert received["sent_at"] == "1795000000000"
        attributes = received["provider_metadata"]["attributes"]
        assert attributes["readable_date"] == "Nov 17, 2026 12:26:40 PM"
        assert attributes["date_sent"] == "1794999998000"
        assert [m["body"] for m in second.messages] == ["Lab says results are ready & sent."]
    finally:
        ledger.close()


def test_a_folder_of_emails_imports_and_unknown_patients_or_files_are_one_line(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    for name in ("email_answer.eml", "email_question.eml"):
        (folder / name).write_bytes((FIXTURES / name).read_bytes())
    by = ["--by", str(practice.clinician.id)]
    before = practice.leaves()
    code, _, err = run(capsys, "email", str(folder), "--patient", str(uuid4()), *by)
    assert (code, err) == (2, "chartledger: refused: no record with that id\n")
    missing = tmp_path / "missing.xml"
    code, _, err = run(capsys, "sms", str(missing), "--patient", str(practice.jane.id), *by)
    assert (code, err) == (2, f"chartledger: refused: cannot read {missing}: No such file or "
                              "directory\n")  # fmt: skip
    assert practice.leaves() == before
    code, out, _ = run(capsys, "email", str(folder), "--patient", str(practice.jane.id), *by)
    assert code == 0 and out.startswith("Imported 2 of 2 email item(s), 0 rejected")
    summary, ledger = practice.summary(out)
    try:
        [thread_id] = summary.created  # the answer names the question: one thread
        assert len(ledger.repository.get(thread_id).messages) == 2
        assert summary.source_name == "email_answer.eml, email_question.eml"
    finally:
        ledger.close()


def test_messages_for_a_patient_without_care_are_refused_whole(
    practice: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    before = practice.leaves()
    code, out, err = run(
        capsys, "sms", fixture("sms_good.xml"), "--patient", str(practice.jane.id),
        "--by", str(practice.outsider.id),
    )  # fmt: skip
    assert (code, out) == (2, "")
    assert err == (
        f"chartledger: refused: no care relationship with patient {practice.jane.id}: "
        "an owner may import for them\n"
    )
    assert practice.leaves() == before + 1  # the refusal, for the audit view (issue 17)
