"""Ledger events as a production's reader sees them (legal_hold/production_readable.py and
production_people.py): people by name, never an outside patient's; lab values exactly as
received; a message's time labelled with where it came from."""

from __future__ import annotations

from legal_hold.production_people import OUTSIDE, Patient, People
from legal_hold.production_readable import message, reading, section_of

AMES, ZOE, OTHER = "user:5f72aa00", "patient:b07aafa1", "patient:c0ffee00"
PEOPLE = People(
    users={AMES: "Dr Avery Ames"},
    patients={ZOE: Patient(ZOE, given_name="Zoë", family_name="Łukasiewicz", mrn="0042")},
)


def uuid(subject: str) -> dict[str, str]:
    """A payload's id as the transcoder tags it."""
    return {"_type_": "uuid", "_data_": subject.partition(":")[2]}


def test_a_produced_patient_and_a_user_are_named_and_an_outside_patient_never_is() -> None:
    assert PEOPLE.name(ZOE) == "Zoë Łukasiewicz"
    assert PEOPLE.name(AMES) == "Dr Avery Ames"
    assert PEOPLE.name(OTHER) == OUTSIDE
    assert PEOPLE.name("user:deadbeef-0000") == "user deadbeef"
    read = reading(
        "domain.access:Access.Recorded",
        {"user_id": uuid(AMES), "patient_id": uuid(OTHER), "action": "access"},
        PEOPLE,
    )
    assert "Patient: a patient outside this production" in read.text
    assert OTHER.partition(":")[2] not in read.text and "User: Dr Avery Ames" in read.text


def test_a_lab_result_is_a_table_row_of_the_values_exactly_as_received() -> None:
    payload = {
        "test_name": "Glucose", "loinc_code": "2345-7", "value": {"_type_": "decimal",
        "_data_": "182.0"}, "unit": "mg/dL", "reference_range": " 70-99", "abnormal_flag": "HH",
        "collected_at": "20261102083000-0500", "performing_lab": "Quest",
    }  # fmt: skip
    read = reading("domain.labs:LabResult.Received", payload, PEOPLE)
    assert read.row == (
        "Glucose (LOINC 2345-7)", "182.0", "mg/dL", " 70-99", "HH", "20261102083000-0500", "Quest"
    )  # fmt: skip
    assert section_of("domain.labs:LabResult.Received") == "Lab results"


def test_a_signature_and_an_addendum_name_their_authors() -> None:
    signed = reading(
        "domain.notes:Note.Signed", {"signed_by": uuid(AMES), "signed_at": "2026-11-02"}, PEOPLE
    )
    assert signed.text == "Signed by Dr Avery Ames at 2026-11-02"
    addendum = reading(
        "domain.notes:Note.AddendumAdded",
        {"author_id": uuid(AMES), "text": "A1c ordered.", "reason": "late", "at": "2026-11-03"},
        PEOPLE,
    )
    assert addendum.kind == "Addendum by Dr Avery Ames" and "A1c ordered." in addendum.text


def test_a_messages_time_says_where_it_came_from() -> None:
    raw = (
        b"From: a@example.org\r\nTo: b@example.org\r\n"
        b"Date: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHi\r\n"
    )
    headers = [["From", " a@example.org"], ["To", " b@example.org"],
               ["Date", " Mon, 2 Mar 2026 09:00:00 +0000"]]  # fmt: skip
    mail = message("domain.messages:Thread.EmailIngested",
                   {"raw": raw, "headers": headers, "received_at": "2026-03-02T09:05:00Z"},
                   PEOPLE, [])  # fmt: skip
    assert (mail.original, mail.original_label) == (
        "Mon, 2 Mar 2026 09:00:00 +0000",
        "email Date header",
    )
    assert "Hi" in mail.text and "From: a@example.org" in mail.text
    undated = message("domain.messages:Thread.EmailIngested",
                      {"raw": b"From: a@example.org\r\n\r\nHi\r\n", "headers": [["From", "a"]],
                       "received_at": "2026-03-02T09:05:00Z"}, PEOPLE, [])  # fmt: skip
    assert undated.original_label == "received (as recorded)"
    sms = message("domain.messages:Thread.SmsIngested",
                  {"from_number": "+15550100", "to_number": "+15550101", "body": "ok",
                   "sent_at": "2026-03-02 09:00"}, PEOPLE, [])  # fmt: skip
    assert (sms.original, sms.original_label) == ("2026-03-02 09:00", "SMS sent time (as received)")
    posted = message("domain.messages:Thread.MessagePosted",
                     {"sender": AMES, "body": "Results are in.", "at": "2026-03-02T09:00:00Z"},
                     PEOPLE, [AMES, ZOE])  # fmt: skip
    assert posted.kind == "Message from Dr Avery Ames" and "To: Zoë Łukasiewicz" in posted.text
    assert posted.original_label == "sent (as recorded by the practice)"
