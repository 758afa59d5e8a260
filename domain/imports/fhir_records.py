"""One FHIR R4 resource -> what the ledger records of it (docs/IMPORTS.md §9.3): the fields of
the domain record it becomes, the source's id, and its times exactly as sent. No I/O.

A resource that cannot become a record raises ``Refused`` with every reason found; reasons name
elements and rules, never values (a name, a result or a note is PHI).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from uuid import UUID

from domain.allergies import SEVERITIES
from domain.errors import ChartError
from domain.imports.fhir_parts import (
    coding,
    concepts,
    party,
    payload_parts,
    reference_id,
)
from domain.imports.fhir_values import (
    FhirTime,
    Number,
    decimal_text,
    original_time,
    parse_time,
)
from domain.quantities import check_unit

LOINC = "http://loinc.org"
MR = "MR"  # v2-0203 identifier type: medical record number
SEXES = ("female", "male", "other", "unknown")
STOPPED = {"stopped", "completed", "cancelled", "entered-in-error"}
ENCOUNTER_STATUSES = (  # R4 encounter-status
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
)
# Elements whose text is a time: each is kept exactly as sent in the source record.
TIME_ELEMENTS = (
    "effectiveDateTime",
    "issued",
    "recordedDate",
    "onsetDateTime",
    "abatementDateTime",
    "authoredOn",
    "dateAsserted",
    "date",
    "sent",
    "received",
    "birthDate",
)


class Refused(Exception):
    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = tuple(reasons)


@dataclass(frozen=True)
class Context:
    source: str  # the exporting system, as a URI
    binaries: dict[str, dict[str, Any]]
    patients: set[str]  # the ids of the export's Patient resources
    known_patient: Callable[[list[tuple[str, str]]], UUID | None]
    mrn_taken: Callable[[str], bool]


@dataclass
class Item:
    """What one resource becomes: ``kind`` (patient, lab, vital, problem, medication, allergy,
    document, email, sms, communication, encounter, practitioner) and the record's
    ``fields``."""

    kind: str
    resource_type: str
    resource_id: str
    fields: dict[str, Any]
    times: dict[str, str]
    patient_ref: str | None = None  # ``Patient/<source id>``
    file: str = ""
    file_sha256: str = ""
    line: int = 0
    raw: bytes = b""
    thread: str | None = None  # the source's thread identifier (Communication)
    practitioners: list[dict[str, str]] = field(default_factory=list)


def item(resource: dict[str, Any], context: Context) -> Item:
    kind = resource["resourceType"]
    reasons: list[str] = []
    read = READERS[kind]
    fields, record_kind = read(resource, context, reasons)
    patient = None
    if kind not in ("Patient", "Practitioner"):
        patient = _patient_ref(
            resource, "patient" if kind == "AllergyIntolerance" else "subject", context, reasons
        )
    if reasons:
        raise Refused(reasons)
    thread = None
    if kind == "Communication":
        thread = next(
            (
                i.get("value")
                for i in resource.get("identifier") or ()
                if type(i) is dict and type(i.get("value")) is str
            ),
            None,
        )
    return Item(
        kind=record_kind,
        resource_type=kind,
        resource_id=resource["id"],
        fields=fields,
        times=source_times(resource),
        patient_ref=patient if kind != "Patient" else f"Patient/{resource['id']}",
        thread=thread,
        practitioners=practitioner_refs(resource),
    )


def source_times(resource: dict[str, Any]) -> dict[str, str]:
    """Every time the resource states, by element path, as text exactly as sent."""
    found: dict[str, str] = {}
    meta = resource.get("meta")
    if type(meta) is dict and type(meta.get("lastUpdated")) is str:
        found["meta.lastUpdated"] = meta["lastUpdated"]
    for name in TIME_ELEMENTS:
        if type(resource.get(name)) is str:
            found[name] = resource[name]
    for name in ("effectivePeriod", "period"):
        period = resource.get(name)
        if type(period) is dict:
            for end in ("start", "end"):
                if type(period.get(end)) is str:
                    found[f"{name}.{end}"] = period[end]
    kept = original_time(resource)
    if kept is not None:
        found["extension(original-time)"] = kept
    return found


# --- references -------------------------------------------------------------------------


def practitioner_refs(resource: dict[str, Any]) -> list[dict[str, str]]:
    """Every reference to a source practitioner, in document order, once each: its
    ``reference`` (``Practitioner/<id>`` or a URL), or its identifier (``system|value``: how
    Chartledger names its users when it exports no Practitioner), and its ``display``."""
    found: list[dict[str, str]] = []

    def walk(value: Any) -> None:
        if type(value) is list:
            for v in value:
                walk(v)
            return
        if type(value) is not dict:
            return
        entry: dict[str, str] = {}
        if reference_id(value, "Practitioner") is not None:
            entry["reference"] = value["reference"]
        elif value.get("type") == "Practitioner" and type(value.get("identifier")) is dict:
            ident = value["identifier"]
            if type(ident.get("value")) is str:
                entry["identifier"] = f"{ident.get('system') or ''}|{ident['value']}"
        if entry:
            if type(value.get("display")) is str:
                entry["display"] = value["display"]
            if entry not in found:
                found.append(entry)
            return
        for key, v in value.items():
            if key not in ("contained", "text"):
                walk(v)

    walk({k: v for k, v in resource.items() if k not in ("resourceType", "id")})
    return found


def _patient_ref(
    resource: dict[str, Any], element: str, context: Context, reasons: list[str]
) -> str | None:
    target = resource.get(element)
    if target is None:
        reasons.append(f"{element} is missing: every record belongs to a patient")
        return None
    ident = reference_id(target, "Patient")
    if ident is None or ident not in context.patients:
        reasons.append(f"{element} does not reference a Patient of this export")
        return None
    return f"Patient/{ident}"


# --- small readers ----------------------------------------------------------------------


def _concept(value: Any, element: str, reasons: list[str]) -> tuple[str, str | None, str | None]:
    """(text, system, code) of a CodeableConcept: the text as sent, else a coding's display,
    else its code."""
    if type(value) is not dict:
        reasons.append(f"{element} is missing")
        return "", None, None
    codings = [c for c in value.get("coding") or () if type(c) is dict]
    coding = next((c for c in codings if type(c.get("code")) is str), None)
    system = code = None
    if coding is not None:
        code = coding["code"]
        system = coding.get("system") if type(coding.get("system")) is str else None
    text = value.get("text")
    if type(text) is not str or not text.strip():
        text = next(
            (c["display"] for c in codings if type(c.get("display")) is str and c["display"]), code
        )
    if not text:
        reasons.append(f"{element} has no text, display or code")
        return "", None, None
    return text, system, code


def _codes(value: Any) -> set[str]:
    """Every code of a CodeableConcept or a list of them."""
    items = value if type(value) is list else [value]
    return {
        c["code"]
        for v in items
        if type(v) is dict
        for c in v.get("coding") or ()
        if type(c) is dict and type(c.get("code")) is str
    }


def _text_of(value: Any) -> str | None:
    if type(value) is not dict:
        return None
    if type(value.get("text")) is str and value["text"]:
        return str(value["text"])
    for c in value.get("coding") or ():
        if type(c) is dict and type(c.get("display")) is str and c["display"]:
            return str(c["display"])
    return None


def _time(value: Any, element: str, reasons: list[str]) -> FhirTime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as e:
        reasons.append(f"{element} {e}")
        return None


def _quantity(value: Any, element: str, reasons: list[str]) -> tuple[str, str] | None:
    """(decimal text as sent, unit as sent) of a Quantity whose unit is UCUM."""
    if type(value) is not dict:
        reasons.append(f"{element} is missing: only quantities are imported")
        return None
    try:
        number = decimal_text(value, "value")
    except ValueError as e:
        reasons.append(f"{element}.{e}")
        return None
    unit = value.get("unit") if type(value.get("unit")) is str else value.get("code")
    if type(unit) is not str:
        reasons.append(f"{element} has no unit (unit or code)")
        return None
    try:
        check_unit(unit, f"{element}.unit")
    except ChartError:
        reasons.append(f"{element}.unit is not a UCUM unit (docs/IMPORTS.md §4.1)")
        return None
    if value.get("comparator") is not None:
        reasons.append(f"{element} has a comparator: only exact values are imported")
        return None
    return number, unit


# --- one reader per resource type -------------------------------------------------------

Fields = tuple[dict[str, Any], str]


def _read_patient(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    names = [n for n in r.get("name") or () if type(n) is dict]
    name = next((n for n in names if n.get("use") == "official"), names[0] if names else None)
    family = name.get("family") if name else None
    given = [g for g in (name.get("given") or ()) if type(g) is str] if name else []
    if type(family) is not str or not family.strip():
        reasons.append("name.family is missing (the record keeps a family name)")
    if not given or not " ".join(given).strip():
        reasons.append("name.given is missing (the record keeps a given name)")
    gender = r.get("gender")
    if gender not in SEXES:
        reasons.append("gender is missing or not female, male, other or unknown")
    born = _time(r.get("birthDate"), "birthDate", reasons)
    if born is None and "birthDate" not in r:
        reasons.append("birthDate is missing (the record keeps a birth date)")
    elif born is not None and born.precision != "day":
        reasons.append("birthDate is not a full date (YYYY-MM-DD)")
    identifiers: list[tuple[str, str]] = []
    mrn = None
    for i in r.get("identifier") or ():
        if type(i) is not dict or type(i.get("value")) is not str or not i["value"]:
            continue
        if type(i.get("system")) is str and i["system"]:
            pair = (i["system"], i["value"])
            if pair not in identifiers:
                identifiers.append(pair)
        if mrn is None and MR in _codes(i.get("type")):
            mrn = i["value"]
    own = (context.source, f"Patient/{r['id']}")
    if own not in identifiers:
        identifiers.append(own)
    match = context.known_patient(identifiers)
    mrn = mrn or next((v for _, v in identifiers[:-1]), r["id"])
    if match is None and context.mrn_taken(mrn):
        reasons.append("its medical record number belongs to another patient of this practice")
    fields = {
        "mrn": mrn,
        "given_name": " ".join(given),
        "family_name": family,
        "birth_date": born.value if born else None,
        "sex": gender,
        "identifiers": [{"system": s, "value": v} for s, v in identifiers],
        "match": match,
    }
    return fields, "patient"


def _read_practitioner(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    names = [n for n in r.get("name") or () if type(n) is dict]
    shown = None
    if names:
        n = names[0]
        shown = (
            n.get("text")
            if type(n.get("text")) is str
            else " ".join(
                [g for g in n.get("given") or () if type(g) is str]
                + ([n["family"]] if type(n.get("family")) is str else [])
            )
        )
    return {"name": shown or None}, "practitioner"


def _read_encounter(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    """An encounter as history (docs/IMPORTS.md §9.3): its status, class, types, period as
    sent, participants as named and reasons; never a booking of the practice's schedule."""
    if r.get("status") not in ENCOUNTER_STATUSES:
        reasons.append("status is missing or not an R4 Encounter status")
    klass = coding(r.get("class"))
    if klass is None:
        reasons.append("class is missing or has no code")
    period = r.get("period") if type(r.get("period")) is dict else {}
    ends: dict[str, str | None] = {}
    for end in ("start", "end"):
        _time(period.get(end), f"period.{end}", reasons)
        ends[end] = period[end] if type(period.get(end)) is str else None
    participants = []
    for p in r.get("participant") or ():
        if type(p) is not dict:
            continue
        who = party(p.get("individual"))
        roles = concepts(p.get("type") or [])
        if who is not None or roles:
            participants.append(
                {**({"individual": who} if who else {}), **({"type": roles} if roles else {})}
            )
    fields = {
        "status": r.get("status"),
        "encounter_class": klass,
        "types": concepts(r.get("type") or []),
        "period_start": ends["start"],
        "period_end": ends["end"],
        "participants": participants,
        "reasons": concepts(r.get("reasonCode") or []),
    }
    return fields, "encounter"


def _read_observation(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    if type(r.get("status")) is not str:
        reasons.append("status is missing")
    categories = _codes(r.get("category"))
    code = r.get("code")
    codings = [c for c in (code or {}).get("coding") or () if type(c) is dict]
    loinc = next(
        (c["code"] for c in codings if c.get("system") == LOINC and type(c.get("code")) is str),
        None,
    )
    if loinc is None:
        reasons.append("code has no LOINC coding")
    name = _text_of(code) or loinc
    value = _quantity(r.get("valueQuantity"), "valueQuantity", reasons)
    if "vital-signs" in categories:
        when = _time(r.get("effectiveDateTime"), "effectiveDateTime", reasons)
        if when is None or when.precision != "second":
            reasons.append("effectiveDateTime is missing or not a time to the second")
        fields = {
            "loinc_code": loinc,
            "name": name,
            "value": value,
            "measured_at": when.value if when else None,
            "in_error": r.get("status") == "entered-in-error",
        }
        return fields, "vital"
    if "laboratory" not in categories:
        reasons.append("category is neither laboratory nor vital-signs: not imported")
    collected = original_time(r)
    if collected is None:
        collected = r.get("effectiveDateTime")
        _time(collected, "effectiveDateTime", reasons)
    performer = next(
        (
            p.get("display")
            for p in r.get("performer") or ()
            if type(p) is dict and type(p.get("display")) is str
        ),
        None,
    )
    ranges = [x for x in r.get("referenceRange") or () if type(x) is dict]
    low = high = range_text = None
    if ranges:
        for end in ("low", "high"):
            if type(ranges[0].get(end)) is dict:
                try:
                    text = decimal_text(ranges[0][end], "value")
                except ValueError as e:
                    reasons.append(f"referenceRange.{end}.{e}")
                    continue
                low, high = (text, high) if end == "low" else (low, text)
        range_text = ranges[0].get("text") if type(ranges[0].get("text")) is str else None
    flags = [x for x in r.get("interpretation") or () if type(x) is dict]
    flag = None
    if flags:
        flag = flags[0].get("text") if type(flags[0].get("text")) is str else None
        flag = flag or next(iter(sorted(_codes(flags[0]))), None)
    fields = {
        "loinc_code": loinc,
        "test_name": name,
        "value": value,
        "performing_lab": performer or "not named by the source",
        "collected_at": collected,
        "reference_low": low,
        "reference_high": high,
        "reference_range": range_text,
        "abnormal_flag": flag,
    }
    return fields, "lab"


def _read_condition(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    text, system, code = _concept(r.get("code"), "code", reasons)
    onset = r.get("onsetString")
    if type(onset) is not str:
        onset = r.get("onsetDateTime")
        _time(onset, "onsetDateTime", reasons)
    status = _codes(r.get("clinicalStatus"))
    ended = _time(r.get("abatementDateTime"), "abatementDateTime", reasons)
    fields = {
        "description": text,
        "code_system": system,
        "code": code,
        "onset": onset if type(onset) is str else None,
        "resolved": bool(status & {"resolved", "inactive", "remission"}),
        "resolved_on": ended.day if ended else None,
    }
    return fields, "problem"


def _read_medication(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    if "medicationCodeableConcept" not in r:
        reasons.append("medicationCodeableConcept is missing (a medicationReference is not read)")
        drug, system, code = "", None, None
    else:
        drug, system, code = _concept(r["medicationCodeableConcept"], "medication", reasons)
    element = "dosage" if r["resourceType"] == "MedicationStatement" else "dosageInstruction"
    dosages = [d for d in r.get(element) or () if type(d) is dict]
    dose = None
    route = frequency = None
    if not dosages:
        reasons.append(f"{element} is missing: the record keeps a dose")
    else:
        rates = [x for x in dosages[0].get("doseAndRate") or () if type(x) is dict]
        dose = _quantity(
            rates[0].get("doseQuantity") if rates else None,
            f"{element}.doseAndRate.doseQuantity",
            reasons,
        )
        route = _text_of(dosages[0].get("route"))
        timing = dosages[0].get("timing")
        frequency = _text_of(timing.get("code")) if type(timing) is dict else None
    period = r.get("effectivePeriod")
    if type(period) is not dict:
        validity = (r.get("dispenseRequest") or {}).get("validityPeriod")
        period = validity if type(validity) is dict else {}
    start_text = period.get("start") or r.get("effectiveDateTime") or r.get("authoredOn")
    start = _time(start_text, "start", reasons)
    if start is None or start.day is None:
        reasons.append(
            "has no start date (effectivePeriod.start, effectiveDateTime, "
            "dispenseRequest.validityPeriod.start or authoredOn, to the day)"
        )
    stopped = r.get("status") in STOPPED
    end = _time(period.get("end"), "end", reasons)
    if stopped and (end is None or end.day is None):
        reasons.append("is stopped but has no end date to the day (effectivePeriod.end)")
    fields = {
        "drug": drug,
        "code_system": system,
        "code": code,
        "dose": dose,
        "route": route,
        "frequency": frequency,
        "started_on": start.day if start else None,
        "stopped_on": end.day if stopped and end else None,
    }
    return fields, "medication"


def _read_allergy(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    substance, system, code = _concept(r.get("code"), "code", reasons)
    reactions = [x for x in r.get("reaction") or () if type(x) is dict]
    reaction = severity = None
    if reactions:
        shown = [_text_of(m) for m in reactions[0].get("manifestation") or ()]
        reaction = next((s for s in shown if s), None)
        severity = reactions[0].get("severity")
        if severity is not None and severity not in SEVERITIES:
            reasons.append("reaction.severity is not mild, moderate or severe")
    fields = {
        "substance": substance,
        "code_system": system,
        "code": code,
        "reaction": reaction,
        "severity": severity,
        "inactive": bool(_codes(r.get("clinicalStatus")) & {"inactive", "resolved"}),
    }
    return fields, "allergy"


def _read_document(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    contents = [c for c in r.get("content") or () if type(c) is dict]
    attachment = contents[0].get("attachment") if contents else None
    if type(attachment) is not dict:
        reasons.append("content.attachment is missing")
        return {}, "document"
    media_type = attachment.get("contentType")
    data = _attachment_data(attachment, context, reasons)
    if type(media_type) is not str:
        binary = _binary(attachment, context)
        media_type = binary.get("contentType") if binary else None
    if type(media_type) is not str:
        reasons.append("content.attachment.contentType is missing")
    if data is not None:
        size = attachment.get("size")
        if isinstance(size, Number) and size != str(len(data)):
            reasons.append("content.attachment.size is not the length of its data")
        sha1 = attachment.get("hash")
        if type(sha1) is str and sha1 != base64.b64encode(hashlib.sha1(data).digest()).decode():
            reasons.append("content.attachment.hash is not the SHA-1 of its data")
    title = attachment.get("title") if type(attachment.get("title")) is str else None
    fields = {
        "content": data,
        "media_type": media_type,
        "original_filename": title
        or f"{r['id']}.{'txt' if str(media_type).startswith('text/') else 'bin'}",
        "source_created": attachment.get("creation")
        if type(attachment.get("creation")) is str
        else None,
    }
    return fields, "document"


def _binary(attachment: dict[str, Any], context: Context) -> dict[str, Any] | None:
    url = attachment.get("url")
    if type(url) is not str:
        return None
    ident = reference_id({"reference": url}, "Binary")
    return None if ident is None else context.binaries.get(ident)


def _attachment_data(
    attachment: dict[str, Any],
    context: Context,
    reasons: list[str],
    element: str = "content.attachment",
) -> bytes | None:
    encoded = attachment.get("data")
    if encoded is None and "url" in attachment:
        binary = _binary(attachment, context)
        if binary is None:
            reasons.append(f"{element}.url names no Binary of this export")
            return None
        encoded = binary.get("data")
    if type(encoded) is not str:
        reasons.append(f"{element} has no data (inline or in a Binary)")
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        reasons.append(f"{element} data is not base64")
        return None


def _read_communication(r: dict[str, Any], context: Context, reasons: list[str]) -> Fields:
    payloads = [p for p in r.get("payload") or () if type(p) is dict]
    attachments = [
        p["contentAttachment"] for p in payloads if type(p.get("contentAttachment")) is dict
    ]
    strings = [p["contentString"] for p in payloads if type(p.get("contentString")) is str]
    topic = _text_of(r.get("topic")) or "(no subject)"
    email = next((a for a in attachments if a.get("contentType") == "message/rfc822"), None)
    if email is not None:
        raw = _attachment_data(email, context, reasons)
        received = _time(r.get("received"), "received", reasons)
        return {
            "raw": raw,
            "topic": topic,
            "received_at": received.value if received and received.precision == "second" else None,
        }, "email"
    mediums = [_text_of(m) for m in r.get("medium") or ()]
    if "SMS" in mediums or "SMSWRIT" in _codes(r.get("medium")):
        sender = r.get("sender")
        plain = [
            x.get("display")
            for x in r.get("recipient") or ()
            if type(x) is dict and "reference" not in x and "identifier" not in x
        ]
        frm = sender.get("display") if type(sender) is dict else None
        if type(frm) is not str or not frm:
            reasons.append("sender.display is missing (an SMS names its number)")
        if not plain or type(plain[0]) is not str:
            reasons.append("recipient has no display-only entry (an SMS names its number)")
        if not strings:
            reasons.append("payload has no contentString (the text of the SMS)")
        metadata: dict[str, Any] = {"format": "FHIR R4 Communication"}
        extra = next((a for a in attachments if a.get("contentType") == "application/json"), None)
        if extra is not None:
            data = _attachment_data(extra, context, reasons)
            try:
                loaded = json.loads(data or b"{}", parse_float=Decimal)
            except ValueError:
                loaded = None
            if type(loaded) is not dict:
                reasons.append("payload's application/json attachment is not a JSON object")
            else:
                metadata = loaded
        sent = original_time(r) or r.get("sent")
        return {
            "from_number": frm,
            "to_number": plain[0] if plain else None,
            "body": strings[0] if strings else None,
            "sent_at": sent if type(sent) is str else None,
            "provider_metadata": metadata,
            "topic": topic,
        }, "sms"
    return _plain_communication(r, context, reasons), "communication"


def _plain_communication(r: dict[str, Any], context: Context, reasons: list[str]) -> dict[str, Any]:
    """Any other Communication (a secure message, an amendment letter, another system's
    message): kept as the source wrote it, its payload exactly, its times as text."""
    if not _given(r.get("status")):
        reasons.append("status is missing")
    times = {}
    for element in ("sent", "received"):
        _time(r.get(element), element, reasons)
        times[element] = r[element] if type(r.get(element)) is str else None

    def attachment(value: dict[str, Any], element: str, found: list[str]) -> bytes | None:
        return _attachment_data(value, context, found, element)

    parts = payload_parts(r.get("payload"), attachment, reasons)
    topic = _text_of(r.get("topic"))
    recipients = [p for p in map(party, r.get("recipient") or ()) if p is not None]
    return {
        "status": r.get("status"),
        "topic": topic if _given(topic) else None,
        **times,
        "sender": party(r.get("sender")),
        "recipients": recipients,
        "parts": parts,
        "category": concepts(r.get("category") or []),
        "medium": concepts(r.get("medium") or []),
        "reason": concepts(r.get("reasonCode") or []),
    }


def _given(value: Any) -> bool:
    return type(value) is str and bool(value.strip())


READERS: dict[str, Callable[[dict[str, Any], Context, list[str]], Fields]] = {
    "Patient": _read_patient,
    "Practitioner": _read_practitioner,
    "Encounter": _read_encounter,
    "Observation": _read_observation,
    "Condition": _read_condition,
    "MedicationRequest": _read_medication,
    "MedicationStatement": _read_medication,
    "AllergyIntolerance": _read_allergy,
    "DocumentReference": _read_document,
    "Communication": _read_communication,
}
