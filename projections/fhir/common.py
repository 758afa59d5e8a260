"""What every resource family shares: the practice's identifier systems, references, times,
codes and the quantity rule (docs/EHI_EXPORT.md §3-§4)."""

from __future__ import annotations

import base64
import re
from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote
from uuid import UUID, uuid5

from domain import ucum
from projections.fhir.ndjson import json_decimal
from verify.canonical import format_timestamp
from verify.records import Header

UCUM = "http://unitsofmeasure.org"
URI_SYSTEM = "urn:ietf:rfc:3986"  # the identifier's value is itself a URI (urn:uuid:...)
EXT = "https://chartledger.local/fhir/StructureDefinition/"
ORIGINAL_TEXT = EXT + "original-text"  # a value's characters exactly as received
ORIGINAL_TIME = EXT + "original-time"  # a time exactly as its source gave it
# US Core 6.1.0 and 7.0.0 profile the same resources under the same URLs; a resource that meets
# both claims the profile without a version (docs/EHI_EXPORT.md §5).
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
SUBSETS = uuid5(UUID(int=0), "chartledger subsets")
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
FHIR_DATETIME = re.compile(
    r"[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?",
    re.ASCII,
)
TARGET_RESOURCES = {
    "note": "DocumentReference",
    "document": "DocumentReference",
    "lab_result": "Observation",
    "vital_sign": "Observation",
    "problem": "Condition",
    "medication": "MedicationRequest",
    "allergy": "AllergyIntolerance",
    "patient": "Patient",
}
CODE_SYSTEMS = {
    "snomed": "http://snomed.info/sct",
    "snomed ct": "http://snomed.info/sct",
    "snomed-ct": "http://snomed.info/sct",
    "sct": "http://snomed.info/sct",
    "icd-10-cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd10cm": "http://hl7.org/fhir/sid/icd-10-cm",
    "icd-10": "http://hl7.org/fhir/sid/icd-10",
    "loinc": "http://loinc.org",
    "rxnorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
    "ndc": "http://hl7.org/fhir/sid/ndc",
    "cvx": "http://hl7.org/fhir/sid/cvx",
    "unii": "http://fdasis.nlm.nih.gov",
}


@dataclass(frozen=True)
class Context:
    """What resources need to know about the export: the practice and the export's time."""

    practice_id: str
    origin: str  # chartledger.local/<practice id>
    transaction_time: str  # a ledger timestamp

    @property
    def mrn_system(self) -> str:
        return f"https://{self.origin}/mrn"


def instant(value: datetime | str) -> str:
    """A FHIR instant: ledger timestamps are one already (UTC, microseconds, ``Z``)."""
    return value if isinstance(value, str) else format_timestamp(value)


def day(value: date) -> str:
    return value.isoformat()


def patient_ref(patient_id: UUID | str) -> dict[str, Any]:
    return {"reference": f"Patient/{patient_id}"}


def patient_named(patient_id: str, known: Container[str]) -> dict[str, Any]:
    """A patient as a reference when the export holds their Patient resource (``known``),
    else by identifier (a patient whose record was disposed of): every reference resolves."""
    if patient_id in known:
        return {"reference": f"Patient/{patient_id}"}
    return {"identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{patient_id}"}}


def user_ref(user_id: UUID | str) -> dict[str, Any]:
    """A practice user: the export carries a Practitioner for every user it references
    (projections/fhir/practitioners.py), found by this reference's text."""
    return {"reference": f"Practitioner/{user_id}"}


def organization_ref(practice_id: UUID | str) -> dict[str, Any]:
    """The practice itself, exported as one Organization (projections/fhir/practitioners.py)."""
    return {"reference": f"Organization/{practice_id}"}


def profiled(resource: dict[str, Any], *profiles: str) -> dict[str, Any]:
    """``resource`` claiming the US Core profiles it meets (docs/EHI_EXPORT.md §5)."""
    found = dict(resource.get("meta") or {})
    found["profile"] = list(profiles)
    resource["meta"] = found
    return resource


def subset_id(resource_type: str, whole_id: str, shown: list[str]) -> str:
    """The id of a resource of which a single-patient export shows only part (the patients
    it may name): one id, one content (docs/EHI_EXPORT.md §5)."""
    return str(uuid5(SUBSETS, f"{resource_type}/{whole_id}/{','.join(sorted(shown))}"))


def subsetted(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` tagged as a part of a record (FHIR's SUBSETTED): it names fewer patients
    than the record it comes from, under its own id."""
    found = dict(resource.get("meta") or {})
    found["tag"] = [SUBSETTED]
    resource["meta"] = found
    return resource


def target_ref(target_type: str, target_id: UUID | str) -> dict[str, Any]:
    """The resource an amendment request's target became (``TARGET_TYPES`` of domain.amendments)."""
    return {"reference": f"{TARGET_RESOURCES[target_type]}/{target_id}"}


def subject_ref(subject: str) -> dict[str, Any]:
    """``patient:<id>`` or ``user:<id>`` (a ledger subject) as a reference."""
    kind, _, ident = subject.partition(":")
    return patient_ref(ident) if kind == "patient" else user_ref(ident)


def uri_identifier(value: UUID | str) -> dict[str, Any]:
    return {"system": URI_SYSTEM, "value": f"urn:uuid:{value}"}


def code_system_uri(name: str) -> str:
    """A code system's URI: a known name's, the text itself when it is a URI, else a URN
    naming it (``urn:chartledger:code-system:<name, percent-encoded>``)."""
    known = CODE_SYSTEMS.get(name.strip().lower())
    if known is not None:
        return known
    if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", name):
        return name
    return "urn:chartledger:code-system:" + quote(name, safe="")


def concept(text: str, system: str | None = None, code: str | None = None) -> dict[str, Any]:
    """A CodeableConcept: the text as recorded, and its coding when a code was recorded."""
    found: dict[str, Any] = {}
    if code is not None:
        coding: dict[str, Any] = {"code": code}
        if system is not None:
            coding = {"system": code_system_uri(system), "code": code}
        found["coding"] = [coding]
    found["text"] = text
    return found


def coded(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return {"coding": [coding]}


def quantity(value: str, unit: str) -> dict[str, Any]:
    """A Quantity from a ledger decimal string and its unit, both exactly as received.

    ``value`` is the decimal's own digits as a JSON number; if the ledger text is not a JSON
    number (a ``+`` sign, leading zeros) the number drops only those and the text as received
    rides along in the ``original-text`` extension of ``_value``. ``unit`` is kept as received;
    ``system``/``code`` name it in UCUM when it is a UCUM unit (``domain.ucum``).
    """
    number, changed = json_decimal(value)
    found: dict[str, Any] = {"value": number}
    if changed:
        found["_value"] = {"extension": [{"url": ORIGINAL_TEXT, "valueString": value}]}
    found["unit"] = unit
    if is_ucum(unit):
        found["system"] = UCUM
        found["code"] = unit
    return found


@lru_cache(maxsize=4096)
def is_ucum(unit: str) -> bool:
    """Whether ``unit`` parses as UCUM with every symbol in UCUM's tables (a practice sees a
    few dozen units, so each is checked once)."""
    try:
        ucum.check(unit)
    except ucum.NotUcum:
        return False
    return True


def original_time(text: str) -> dict[str, Any]:
    return {"url": ORIGINAL_TIME, "valueString": text}


def fhir_datetime(text: str | None) -> str | None:
    """``text`` when it is already a FHIR dateTime, else None (it then travels as text)."""
    if text is not None and FHIR_DATETIME.fullmatch(text):
        return text
    return None


def base64_of(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def meta(version: int, last_recorded: str) -> dict[str, Any]:
    return {"versionId": str(version), "lastUpdated": last_recorded}


@dataclass
class Tracked:
    """One record's current state (its aggregate, replayed) and what its events said.

    ``events`` holds (header, event) for families whose resources show history (corrections,
    amendment decisions); it is empty for the others.
    """

    state: Any
    first_recorded: str
    last_recorded: str
    events: list[tuple[Header, Any]]

    @property
    def id(self) -> str:
        return str(self.state.id)

    @property
    def meta(self) -> dict[str, Any]:
        return meta(self.state.version, self.last_recorded)
