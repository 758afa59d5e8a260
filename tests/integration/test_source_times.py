"""Issue 19 defects 4 and 5 on both stores: the times each source wrote (a lab's OBR-7/OBX-14,
an email's Date and Received, an SMS's epoch milliseconds) are kept as received in the events,
shown next to the recorded time in the views, and exported as the FHIR time element with the
text as received beside it; a time no reader can place refuses its message whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from events.ledger import Ledger
from projections.chart import chart
from projections.ehi_export import ExportRequest, export
from projections.fhir.common import ORIGINAL_TIME, instant
from projections.fhir.communications import RECORDED
from projections.original_times import entry_times, message_times
from projections.reads import Reader
from projections.rebuild import runner_for
from tests.integration.test_imports_cli import Setup, fixture, practice, run

__all__ = ["practice"]  # the fixture, shared with the import tests
# A lab whose times the old export dropped: OBR-7 at minute precision with an offset, one
# OBX-14 with a fraction and no offset, one OBX-14 at day precision.
ORU = (
    "MSH|^~\\&|LABSYS|Acme Lab|CHARTLEDGER|Clinic|20261120083000||ORU^R01^ORU_R01|T0001|P|2.5.1\r"
    "PID|1||MRN-1001^^^Clinic^MR||Doe^Jane||19800314|F\r"
    "OBR|1|ORD1|FIL1|24323-8^CMP^LN|||202611200715-0500\r"
    "OBX|1|NM|2345-7^Glucose^LN||5.2|mg/dL|3.9-5.5|N|||F\r"
    "OBX|2|NM|2160-0^Creatinine^LN||0.90|mg/dL||N|||F|||20261120071530.25\r"
    "OBX|3|NM|2951-2^Sodium^LN||140|mmol/L||N|||F|||20261120\r"
)


def exported(practice: Setup, patient: UUID, out: Path) -> dict[str, list[dict[str, Any]]]:
    ledger = Ledger(practice.config)
    try:
        manifest = export(ledger, ExportRequest(Reader(uuid4(), "PATRQT"), patient, "t"), out)
    finally:
        ledger.close()
    return {
        o["type"]: [json.loads(line) for line in (out / f"{o['type']}.ndjson").open()]
        for o in manifest["output"]
    }


def extension(resource: dict[str, Any], url: str) -> Any:
    found = [e for e in resource.get("extension", []) if e["url"] == url]
    return found[0] if found else None


def test_every_lab_time_is_kept_as_sent_shown_and_exported_as_effective_time(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    by = ["--by", str(practice.clinician.id)]
    (tmp_path / "times.hl7").write_bytes(ORU.encode())
    assert run(capsys, "labs", fixture("oru_good.hl7"), *by)[0] == 0
    assert run(capsys, "labs", str(tmp_path / "times.hl7"), *by)[0] == 0
    ledger = Ledger(practice.config)
    try:
        runner_for(ledger).catch_up()
        labs = [e for e in chart(ledger.db, practice.jane.id) if e.kind == "LabResult"]
    finally:
        ledger.close()
    # The view: the text as sent, what it says, next to the recorded time.
    shown = {e.state["test_name"]: (entry_times(e.kind, e.state), e.first_recorded) for e in labs}
    glucose, recorded = shown["Glucose"]
    assert glucose["collected"]["raw"] == "202611200715-0500"
    assert glucose["collected"]["instant"] == "2026-11-20T12:15:00.000000Z"
    assert glucose["collected"]["precision"] == "minute" and recorded.endswith("Z")
    creatinine = shown["Creatinine"][0]["collected"]
    assert (creatinine["raw"], creatinine["offset"], creatinine["instant"]) == (
        "20261120071530.25", None, None  # local time of an unknown zone: none invented
    )  # fmt: skip
    # The export: every lab with a time has effectiveDateTime; the text rides beside it.
    observations = exported(practice, practice.jane.id, tmp_path / "out")["Observation"]
    effective = {
        o["code"]["text"]: (o["effectiveDateTime"], extension(o, ORIGINAL_TIME)["valueString"])
        for o in observations
    }
    assert effective == {
        "Glucose [Mass/volume] in Serum or Plasma": ("2026-11-20", "20261120071500"),
        "Creatinine [Mass/volume] in Serum or Plasma": ("2026-11-20", "20261120071500"),
        "Glucose": ("2026-11-20T07:15:00-05:00", "202611200715-0500"),
        "Creatinine": ("2026-11-20", "20261120071530.25"),
        "Sodium": ("2026-11-20", "20261120"),
    }
    assert all(o["issued"].endswith("Z") for o in observations)  # the import's time


def test_a_lab_time_no_reader_can_place_refuses_its_message_and_writes_nothing(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.hl7"
    bad.write_bytes(ORU.replace("202611200715-0500", "20261320").encode())
    before = practice.leaves()
    code, out, _ = run(capsys, "labs", str(bad), "--by", str(practice.clinician.id))
    assert code == 2
    assert "segment 4 (OBX): OBR-7 time is not a date and time on the calendar" in out
    assert "2026132" not in out  # the report names the field, never the value
    assert practice.leaves() == before


def test_email_and_sms_keep_their_sent_and_received_times_in_views_and_export(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jane = ["--patient", str(practice.jane.id), "--by", str(practice.clinician.id)]
    files = [fixture("email_question.eml"), fixture("email_answer.eml")]
    code, emailed, _ = run(capsys, "email", *files, *jane)
    assert code == 0
    code, texted, _ = run(capsys, "sms", fixture("sms_good.xml"), *jane)
    assert code == 0
    (asked, answered), imported = _messages(practice, emailed)
    assert message_times("email", vars(asked)) == {
        "sent": {
            "raw": "Tue, 17 Nov 2026 09:12:44 -0500", "form": "RFC 5322 date-time",
            "local": "2026-11-17T09:12:44", "precision": "second", "offset": "-05:00",
            "instant": "2026-11-17T14:12:44.000000Z", "fhir": "2026-11-17T09:12:44-05:00",
        },
        "received": {
            "raw": "Tue, 17 Nov 2026 14:12:45 +0000", "form": "RFC 5322 date-time",
            "local": "2026-11-17T14:12:45", "precision": "second", "offset": "+00:00",
            "instant": "2026-11-17T14:12:45.000000Z", "fhir": "2026-11-17T14:12:45+00:00",
        },
    }  # fmt: skip
    assert "received" not in message_times("email", vars(answered))  # no Received field
    (sms, *_), _ = _messages(practice, texted)
    assert message_times("sms", vars(sms))["sent"] == {
        "raw": "1795000000000", "form": "epoch milliseconds", "local": "2026-11-18T11:06:40.000",
        "precision": "fraction", "offset": "+00:00", "instant": "2026-11-18T11:06:40.000000Z",
        "fhir": "2026-11-18T11:06:40.000Z",
    }  # fmt: skip
    messages = exported(practice, practice.jane.id, tmp_path / "out")["Communication"]
    sent = {extension(c, ORIGINAL_TIME)["valueString"]: c for c in messages if "sent" in c}
    question = sent["Tue, 17 Nov 2026 09:12:44 -0500"]
    assert (question["sent"], question["received"]) == (
        "2026-11-17T09:12:44-05:00", "2026-11-17T14:12:45+00:00"  # Date, then Received
    )  # fmt: skip
    answer = sent["Tue, 17 Nov 2026 10:02:00 -0500"]
    assert answer["sent"] == "2026-11-17T10:02:00-05:00"
    assert answer["received"] == instant(imported)  # no Received field: the import's time
    assert extension(answer, RECORDED)["valueInstant"].endswith("Z")
    text = sent["1795000000000"]
    assert text["sent"] == "2026-11-18T11:06:40.000Z"
    assert text["received"] == extension(text, RECORDED)["valueInstant"]


def test_an_email_whose_date_no_reader_can_place_is_refused_and_writes_nothing(
    practice: Setup, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.eml"
    bad.write_bytes(
        Path(fixture("email_answer.eml")).read_bytes().replace(b"Tue, 17 Nov", b"Blue, 77 Nov")
    )
    before = practice.leaves()
    code, out, _ = run(
        capsys, "email", str(bad), "--patient", str(practice.jane.id),
        "--by", str(practice.clinician.id),
    )  # fmt: skip
    assert (code, out.splitlines()) == (
        2, ["REJECTED bad.eml: Date: header field is not an RFC 5322 date-time"]
    )  # fmt: skip
    assert practice.leaves() == before


def _messages(practice: Setup, out: str) -> tuple[list[Any], Any]:
    """The ingested messages of an import's first thread, and the first one's import time."""
    summary, ledger = practice.summary(out)
    try:
        events = list(ledger.events.get(summary.created[0]))
    finally:
        ledger.close()
    found = [e for e in events if type(e).__name__ in ("EmailIngested", "SmsIngested")]
    return found, vars(found[0]).get("received_at")
