"""Ledger events as a reader of a production sees them: which part of the chart they belong to,
what happened in plain words, who did it (by name), and for lab results the row of the lab
table with value, unit, range and flag exactly as received (never converted).

Pure: a payload in, a ``Reading`` out. An event type without its own wording is shown as its
fields, each id that names a person replaced by the name (``People``).
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from legal_hold.production_people import People, plain

TEXT_LIMIT = 2000  # characters of one entry's text; natives carry the full content

# The parts of a chart, in the order they are shown.
SECTIONS = (
    "Demographics",
    "Problems",
    "Medications",
    "Allergies",
    "Vital signs",
    "Lab results",
    "Notes",
    "Documents",
    "Appointments",
    "Care team",
    "Amendment requests",
    "Access and disclosures",
    "Holds",
    "Other events",
)
LAB_COLUMNS = ("Test", "Value", "Unit", "Reference range", "Flag", "Collected", "Lab")
VITAL_COLUMNS = ("Measurement", "Value", "Unit", "Measured at", "By")
TABLES = (("Lab results", LAB_COLUMNS), ("Vital signs", VITAL_COLUMNS))
SECTION_OF = {
    "domain.patients": "Demographics",
    "domain.identifiers": "Demographics",
    "domain.problems": "Problems",
    "domain.medications": "Medications",
    "domain.allergies": "Allergies",
    "domain.vitals": "Vital signs",
    "domain.labs": "Lab results",
    "domain.notes": "Notes",
    "domain.documents": "Documents",
    "domain.appointments": "Appointments",
    "domain.encounters": "Appointments",
    "domain.care_team": "Care team",
    "domain.amendments": "Amendment requests",
    "domain.access": "Access and disclosures",
    "domain.refusals": "Access and disclosures",
    "domain.emergency": "Access and disclosures",
    "legal_hold.holds": "Holds",
}


@dataclass(frozen=True)
class Reading:
    kind: str  # what happened, e.g. "Note signed"
    text: str = ""
    row: tuple[str, ...] = ()
    original: str | None = None  # a time the source gave, as received
    original_label: str = "source time"


def section_of(event_type: str) -> str:
    return SECTION_OF.get(event_type.partition(":")[0], "Other events")


def words(event_type: str) -> str:
    """ "domain.notes:Note.AddendumAdded" -> "Note addendum added"."""
    name = event_type.partition(":")[2] or event_type
    aggregate, _, happened = name.partition(".")
    spaced = "".join(f" {c.lower()}" if c.isupper() else c for c in happened).strip()
    return f"{aggregate} {spaced}".strip()


def _text(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if type(value) is bytes:
        return f"<{len(value)} bytes>"
    if type(value) is list:
        return ", ".join(_text(v) for v in value)
    if type(value) is dict:
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    return str(value)


def _limit(text: str) -> str:
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _lines(*pairs: tuple[str, Any]) -> str:
    return "\n".join(f"{label}: {_text(v)}" for label, v in pairs if _text(v))


Formatter = Callable[[dict[str, Any], People], Reading]


def _lab_received(p: dict[str, Any], people: People) -> Reading:
    test = f"{_text(p.get('test_name'))} (LOINC {_text(p.get('loinc_code'))})"
    row = (
        test,
        _text(p.get("value")),
        _text(p.get("unit")),
        _text(p.get("reference_range")),
        _text(p.get("abnormal_flag")),
        _text(p.get("collected_at")),
        _text(p.get("performing_lab")),
    )
    return Reading("Lab result received", row=row)


def _lab_corrected(p: dict[str, Any], people: People) -> Reading:
    by = people.of_id(p.get("corrected_by"), "user")
    what = f"Correction of version {_text(p.get('corrects_version'))}: {_text(p.get('reason'))}"
    row = (what, _text(p.get("value")), _text(p.get("unit")), "", "", "", by)
    return Reading("Lab result corrected", row=row)


def _lab_converted(p: dict[str, Any], people: People) -> Reading:
    what = f"Converted ({_text(p.get('rule'))}) from {_text(p.get('from_value'))} "
    what += _text(p.get("from_unit"))
    row = (what, _text(p.get("converted_value")), _text(p.get("to_unit")), "", "", "", "")
    return Reading("Lab result conversion recorded", row=row)


def _vital(p: dict[str, Any], people: People) -> Reading:
    row = (
        f"{_text(p.get('name'))} (LOINC {_text(p.get('loinc_code'))})",
        _text(p.get("value")),
        _text(p.get("unit")),
        _text(p.get("measured_at")),
        people.of_id(p.get("measured_by"), "user"),
    )
    return Reading("Vital sign measured", row=row)


def _note_drafted(p: dict[str, Any], people: People) -> Reading:
    author = people.of_id(p.get("author_id"), "user")
    text = f"Author: {author}\n\n{_text(p.get('text'))}"
    return Reading(f"Note drafted ({_text(p.get('kind'))})", text)


def _note_signed(p: dict[str, Any], people: People) -> Reading:
    by = people.of_id(p.get("signed_by"), "user")
    return Reading("Note signed", f"Signed by {by} at {_text(p.get('signed_at'))}")


def _addendum(p: dict[str, Any], people: People) -> Reading:
    by = people.of_id(p.get("author_id"), "user")
    text = _lines(("Reason", p.get("reason")), ("At", p.get("at"))) + "\n" + _text(p.get("text"))
    return Reading(f"Addendum by {by}", text)


def _problem(p: dict[str, Any], people: People) -> Reading:
    code = f" ({_text(p.get('code_system'))} {_text(p.get('code'))})" if p.get("code") else ""
    text = _lines(
        ("Problem", f"{_text(p.get('description'))}{code}"),
        ("Onset", p.get("onset")),
        ("Recorded by", people.of_id(p.get("recorded_by"), "user")),
    )
    return Reading("Problem recorded", text)


def _medication(p: dict[str, Any], people: People) -> Reading:
    text = _lines(
        ("Drug", p.get("drug")),
        ("Dose", f"{_text(p.get('dose_value'))} {_text(p.get('dose_unit'))}"),
        ("Route", p.get("route")),
        ("Frequency", p.get("frequency")),
        ("Started on", p.get("started_on")),
        ("Prescriber", people.of_id(p.get("prescriber_id"), "user")),
    )
    return Reading("Medication started", text)


def _allergy(p: dict[str, Any], people: People) -> Reading:
    text = _lines(
        ("Substance", p.get("substance")),
        ("Reaction", p.get("reaction")),
        ("Severity", p.get("severity")),
        ("Recorded by", people.of_id(p.get("recorded_by"), "user")),
    )
    return Reading("Allergy recorded", text)


def _patient_registered(p: dict[str, Any], people: People) -> Reading:
    name = f"{_text(p.get('given_name'))} {_text(p.get('family_name'))}"
    text = _lines(
        ("Name", name),
        ("MRN", p.get("mrn")),
        ("Date of birth", p.get("birth_date")),
        ("Sex", p.get("sex")),
    )
    return Reading("Patient registered", text)


def _access(p: dict[str, Any], people: People) -> Reading:
    text = _lines(
        ("User", people.of_id(p.get("user_id"), "user")),
        ("Patient", people.of_id(p.get("patient_id"), "patient")),
        ("Action", p.get("action")),
        ("Data", p.get("data_category")),
        ("Purpose", p.get("purpose_of_use")),
        ("Outcome", p.get("outcome")),
        ("At", p.get("at")),
    )
    return Reading("Record accessed", text)


def _document(p: dict[str, Any], people: People) -> Reading:
    text = _lines(
        ("File name", p.get("original_filename")),
        ("Media type", p.get("media_type")),
        ("Size", f"{_text(p.get('size'))} bytes"),
        ("SHA-256", p.get("sha256")),
        ("Uploaded by", people.of_id(p.get("uploader_id"), "user")),
        ("Created (as received)", p.get("source_created")),
    )
    return Reading("Document stored (produced as a native file)", text)


def _appointment(p: dict[str, Any], people: People) -> Reading:
    text = _lines(
        ("Provider", people.of_id(p.get("provider_id"), "user")),
        ("From", p.get("start")),
        ("To", p.get("end")),
        ("Reason", p.get("reason")),
    )
    return Reading("Appointment booked", text)


FORMATTERS: dict[str, Formatter] = {
    "domain.labs:LabResult.Received": _lab_received,
    "domain.labs:LabResult.Corrected": _lab_corrected,
    "domain.labs:LabResult.ConversionRecorded": _lab_converted,
    "domain.vitals:VitalSign.Measured": _vital,
    "domain.notes:Note.Drafted": _note_drafted,
    "domain.notes:Note.Signed": _note_signed,
    "domain.notes:Note.AddendumAdded": _addendum,
    "domain.problems:Problem.Recorded": _problem,
    "domain.medications:Medication.Started": _medication,
    "domain.allergies:Allergy.Recorded": _allergy,
    "domain.patients:Patient.Registered": _patient_registered,
    "domain.access:Access.Recorded": _access,
    "domain.documents:Document.Stored": _document,
    "domain.appointments:Appointment.Booked": _appointment,
}
ID_FIELDS = {  # payload fields holding a user's or a patient's id, shown as names
    "user_id": "user",
    "author_id": "user",
    "by": "user",
    "decided_by": "user",
    "resolved_by": "user",
    "reopened_by": "user",
    "changed_by": "user",
    "stopped_by": "user",
    "prescriber_id": "user",
    "provider_id": "user",
    "issued_by": "user",
    "approved_by": "user",
    "placed_by": "user",
    "released_by": "user",
    "proposed_by": "user",
    "patient_id": "patient",
}
SKIPPED = ("subjects", "originator_topic")


def generic(event_type: str, payload: dict[str, Any], people: People) -> Reading:
    parts = []
    for name, value in payload.items():
        if name in SKIPPED:
            continue
        kind = ID_FIELDS.get(name)
        shown = people.of_id(value, kind) if kind else _text(value)
        parts.append(f"{name.replace('_', ' ')}: {shown}")
    return Reading(words(event_type), "\n".join(parts))


def reading(event_type: str, payload: Any, people: People) -> Reading:
    """A produced event's reading; ``payload`` as unpacked from the bundle."""
    if type(payload) is not dict:
        return Reading(words(event_type))
    formatter = FORMATTERS.get(event_type)
    found = formatter(payload, people) if formatter else generic(event_type, payload, people)
    return Reading(found.kind, _limit(found.text), found.row, found.original, found.original_label)


# --- messages ---------------------------------------------------------------------------------


def message(event_type: str, payload: Any, people: People, participants: list[str]) -> Reading:
    """A thread's message: sender, recipients and the time the source gave, labelled."""
    if type(payload) is not dict:
        return Reading(words(event_type))
    kind = event_type.partition(":")[2]
    if kind == "Thread.MessagePosted":
        sender = _text(payload.get("sender"))
        to = [people.name(s) for s in participants if s != sender]
        text = _lines(("To", "; ".join(to))) + "\n\n" + _text(payload.get("body"))
        return Reading(
            f"Message from {people.name(sender)}",
            _limit(text),
            original=_text(payload.get("at")),
            original_label="sent (as recorded by the practice)",
        )
    if kind == "Thread.EmailIngested":
        return _email(payload)
    if kind == "Thread.SmsIngested":
        text = _lines(("From", payload.get("from_number")), ("To", payload.get("to_number")))
        text += "\n\n" + _text(payload.get("body"))
        sent = _text(payload.get("sent_at"))
        return Reading(
            f"Text message from {_text(payload.get('from_number'))}",
            _limit(text),
            original=sent or None,
            original_label="SMS sent time (as received)",
        )
    if kind == "Thread.Started":
        names = [people.of_id(u, "user") for u in payload.get("user_ids") or []]
        names += [people.of_id(p, "patient") for p in payload.get("patient_ids") or []]
        text = _lines(
            ("Kind", payload.get("kind")),
            ("Topic", payload.get("topic")),
            ("Participants", "; ".join(names)),
        )
        return Reading("Thread started", text)
    return generic(event_type, payload, people)


def _email(payload: dict[str, Any]) -> Reading:
    headers = {}
    for pair in payload.get("headers") or []:
        if type(pair) is list and len(pair) == 2:
            headers.setdefault(str(pair[0]).lower(), " ".join(str(pair[1]).split()))
    text = _lines(
        ("From", headers.get("from")),
        ("To", headers.get("to")),
        ("Cc", headers.get("cc")),
        ("Subject", headers.get("subject")),
    )
    body = _email_body(payload.get("raw"))
    if body:
        text += "\n\n" + body
    date = headers.get("date")
    return Reading(
        f"Email from {headers.get('from') or 'unknown sender'}",
        _limit(text),
        original=date or _text(payload.get("received_at")),
        original_label="email Date header" if date else "received (as recorded)",
    )


def _email_body(raw: Any) -> str:
    """The first text/plain part of an email, for reading; the .eml native is the record."""
    if type(raw) is not bytes:
        return ""
    try:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        part = parsed.get_body(preferencelist=("plain",))
        return str(part.get_content()).strip() if part is not None else ""
    except Exception:  # a malformed message is still produced as its native bytes
        return "[the message body could not be read here: see its native file]"
