"""A production of the demo practice's matter, opened as an attorney would: index.html lists
documents by people's names, chart PDFs read as charts in any script, out-of-scope threads are a
log rather than documents, and the bundle still verifies.

The matter: the demo practice (``api.demo.load_demo``) plus a patient with a full chart whose
name needs three scripts' fonts, patients named in Chinese and Greek, and a clinician named in
Cyrillic; a hold on two patients and the custodian Dr. Avery Ames, whose secure threads with the
demo's other patients fall outside the scope. Screenshots of index.html (headless Debian
chromium) and two PDF pages (pdftoppm) go to tests/artifacts/production/ to look at.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import pypdf
import pytest

from api.demo import load_demo
from api.settings import Settings
from domain.allergies import Allergy
from domain.base import user_subject
from domain.credentials import account_id
from domain.labs import LabResult
from domain.medications import Medication
from domain.messages import Thread
from domain.notes import Note
from domain.patients import Patient
from domain.problems import Problem
from domain.quantities import Quantity
from domain.users import User
from domain.vitals import VitalSign
from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.holds import Scope
from legal_hold.production import produce
from verify.bundle import verify_bundle

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "production"
T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
NAMES = ("Zoë Łukasiewicz", "李小龙", "Ἀριστοτέλης", "Мария")


def tool(name: str, package: str) -> str:
    """A Debian tool the test looks through; installed with apt when missing (as root)."""
    found = shutil.which(name)
    if found is None and shutil.which("apt-get") and Path("/root").exists():
        subprocess.run(["apt-get", "install", "-y", "-q", package], capture_output=True)
        found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is needed (apt-get install {package})")
    return found


def a_patient(ledger: Ledger, by: UUID, given: str, family: str, mrn: str) -> UUID:
    patient = Patient.register(
        mrn=mrn, given_name=given, family_name=family, birth_date=date(1961, 4, 2), sex="female"
    )
    with acting(user_subject(by), "test"):
        ledger.save(patient)
    return patient.id


def full_chart(ledger: Ledger, patient: UUID, clinician: UUID, colleague: UUID) -> None:
    """Problems, a medication, an allergy, vitals, labs as received, a signed note with an
    addendum by a colleague, and a secure thread."""
    problem = Problem.record(
        patient_id=patient, description="Type 2 diabetes mellitus", recorded_by=clinician,
        code_system="http://snomed.info/sct", code="44054006", onset="2019",
    )  # fmt: skip
    medication = Medication.start(
        patient_id=patient, drug="Metformin 500 mg tablet", dose=Quantity("500", "mg"),
        started_on=date(2026, 1, 5), prescriber_id=clinician, route="oral",
        frequency="twice daily",
    )  # fmt: skip
    allergy = Allergy.record(
        patient_id=patient, substance="Penicillin", recorded_by=clinician, reaction="hives",
        severity="moderate",
    )  # fmt: skip
    glucose = LabResult.receive(
        patient_id=patient, loinc_code="2345-7", test_name="Glucose",
        quantity=Quantity("182", "mg/dL"), performing_lab="Quest Łódź",
        source_format="HL7v2", source_message=b"OBX|1|NM|2345-7^Glucose^LN||182|mg/dL|70-99|H\r",
        reference_range="70-99", reference_low="70", reference_high="99", abnormal_flag="H",
        collected_at="20261102083000-0500",
    )  # fmt: skip
    creatinine = LabResult.receive(
        patient_id=patient, loinc_code="2160-0", test_name="Creatinine",
        quantity=Quantity("0.9", "mg/dL"), performing_lab="Quest Łódź", source_format="HL7v2",
        source_message=b"OBX|2|NM|2160-0^Creatinine^LN||0.9|mg/dL|0.6-1.2|N\r",
        reference_range="0.6-1.2", abnormal_flag="N", collected_at="20261102083000-0500",
    )  # fmt: skip
    pulse = VitalSign.measure(
        patient_id=patient, loinc_code="8867-4", name="Heart rate",
        quantity=Quantity("72", "/min"), measured_at=T0, measured_by=clinician,
    )  # fmt: skip
    note = Note.draft(
        patient_id=patient, author_id=clinician, kind="progress",
        text="Seen with her interpreter 李小龙. Glucose high; continue metformin, recheck A1c "
        "in 3 months. Discussed diet (Ἀριστοτέλης: «μέτρον ἄριστον»).",
    )  # fmt: skip
    note.sign(signed_by=clinician, at=T0)
    note.add_addendum(
        text="A1c ordered.", reason="order placed after the visit", author_id=colleague, at=T0
    )
    thread = Thread.start(
        kind="secure", topic="Your lab results", patient_ids=[patient], user_ids=[clinician]
    )
    thread.post(sender=user_subject(clinician), body="Your glucose was high: 182 mg/dL.", at=T0)
    with acting(user_subject(clinician), "test"):
        ledger.save(problem, medication, allergy, glucose, creatinine, pulse, note, thread)


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def test_the_demo_matter_produces_documents_an_attorney_can_read(
    ledger: Ledger, store_config: StoreConfig, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = Settings(store=store_config, pbkdf2_iterations=1000, background=False)
    assert load_demo(ledger, settings, patients=12)
    ames = ledger.repository.get(account_id("dr.ames")).user_id
    desk = ledger.repository.get(account_id("frontdesk")).user_id
    maria = User.register(name="Dr Мария Иванова", role="clinician")
    with acting(user_subject(desk), "test"):
        ledger.save(maria)
    zoe = a_patient(ledger, desk, "Zoë", "Łukasiewicz", "DEMO-0101")
    li = a_patient(ledger, desk, "小龙", "李", "DEMO-0102")
    aristotle = a_patient(ledger, desk, "Ἀριστοτέλης", "Σταγειρίτης", "DEMO-0103")
    full_chart(ledger, zoe, ames, maria.id)
    risk = desk
    matter = lh.open_matter(
        ledger, name="Łukasiewicz v. Demo Practice", number="CV-2026-18", forum="Court", at=T0,
        by=risk,
    )  # fmt: skip
    lh.place_hold(
        ledger, matter_id=matter.id, name="Chart and treating physician",
        scope=Scope.of(patients=[zoe, li, aristotle], custodians=[ames]), at=T0, by=risk,
    )  # fmt: skip
    out = tmp_path / "production.zip"
    produce(ledger, matter.id, out, by=risk)

    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    unzipped = tmp_path / "production"
    with zipfile.ZipFile(out) as archive:
        archive.extractall(unzipped)

    # index.html lists documents by the people they concern; no title is only an id.
    index = (unzipped / "index.html").read_text("utf-8")
    titles = re.findall(r'<td class="title">(.*?)</td>', index)
    assert "Chart — Zoë Łukasiewicz (MRN DEMO-0101)" in titles
    assert "Chart — 小龙 李 (MRN DEMO-0102)" in titles
    assert "Activity of custodian Dr. Avery Ames" in titles
    assert "Message thread — Your lab results" in titles
    assert not [t for t in titles if UUID_TEXT.search(t)]
    # No filler: every timeline has an entry that is shown, and the custodian's threads with
    # patients outside the matter are rows of the out-of-scope log, not documents.
    for text_file in (unzipped / "text").iterdir():
        assert "[WITHHELD: outside the scope" not in text_file.read_text("utf-8"), text_file
    scope_log = (unzipped / "scope/out_of_scope_log.csv").read_text("utf-8-sig")
    assert scope_log.count("Message thread") >= 3  # Dr. Ames's threads with demo patients
    assert "Quill" not in scope_log and "Reyes" not in scope_log  # no outside patient named

    # The chart PDF reads as a chart, in every script, with ledger positions.
    chart_row = next(r for r in index.split("<tr>") if "Zoë Łukasiewicz (MRN" in r)
    chart_pdf = unzipped / re.search(r'href="(images/[^"]+\.pdf)"', chart_row).group(1)
    text = pdf_text(chart_pdf.read_bytes())
    for name in NAMES:
        assert name in text, name
    for heading in ("Problems", "Medications", "Allergies", "Vital signs", "Lab results", "Notes"):
        assert heading in text
    assert re.search(r"Glucose \(LOINC 2345-7\) 182 mg/dL 70-99 H 20261102083000-0500", text)
    assert re.search(r"Creatinine \(LOINC 2160-0\) 0\.9 mg/dL 0\.6-1\.2 N", text)
    assert "Signed by Dr. Avery Ames at 2026-11-02" in text
    assert "Addendum by Dr Мария Иванова" in text and "A1c ordered." in text
    assert re.search(r"ledger position \d+, recorded", text)
    assert not UUID_TEXT.search(text.replace(f"patient:{zoe}", ""))  # only the reference
    thread_row = next(r for r in index.split("<tr>") if "Your lab results" in r)
    thread_pdf = unzipped / re.search(r'href="(images/[^"]+\.pdf)"', thread_row).group(1)
    thread_text = pdf_text(thread_pdf.read_bytes())
    assert "Message from Dr. Avery Ames" in thread_text and "To: Zoë Łukasiewicz" in thread_text
    assert "sent (as recorded by the practice): 2026-11-02T09:30:00" in thread_text

    # The carried verifier is the one built from this source.
    carried = (unzipped / "chartledger-verify.pyz").read_bytes()
    readme = (unzipped / "README.txt").read_text("utf-8")
    assert hashlib.sha256(carried).hexdigest() in readme

    if "sqlite" not in request.node.name:
        return  # the pictures once are enough
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    chromium = tool("chromium", "chromium")
    shot = ARTIFACTS / "index.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1400,1100", (unzipped / "index.html").as_uri()],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    pdftoppm = tool("pdftoppm", "poppler-utils")
    for pdf, name in ((chart_pdf, "chart-page-1"), (thread_pdf, "thread-page-1")):
        subprocess.run(
            [pdftoppm, "-png", "-r", "100", "-f", "1", "-l", "1", "-singlefile", str(pdf),
             str(ARTIFACTS / name)],
            capture_output=True, timeout=60, check=True,
        )  # fmt: skip
    for name in ("index.png", "chart-page-1.png", "thread-page-1.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000, name
