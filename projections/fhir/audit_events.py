"""AuditEvent, following IHE BALP (https://profiles.ihe.net/ITI/BALP/), from the rows of the
ASTM E2147 audit view (``projections.audit.audit_row``) (docs/EHI_EXPORT.md §5.13)."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from json.encoder import encode_basestring_ascii
from typing import Any

from domain.access import PURPOSES_OF_USE
from projections.audit import COLUMNS
from projections.fhir.common import (
    EXT,
    SUBSETTED,
    URI_SYSTEM,
    Context,
    patient_ref,
    subset_id,
    uri_identifier,
    user_ref,
)

EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
READ_KIND = EXT.replace("StructureDefinition", "CodeSystem") + "read-kind"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PURPOSE_CODES = frozenset(PURPOSES_OF_USE)
REST = {"code": "rest", "display": "RESTful Operation", "system": EVENT_TYPE}
EXPORT = {"code": "110106", "display": "Export", "system": DICOM}
# The audit view's action -> (type, subtype, FHIR AuditEvent.action).
ACTIONS: dict[str, tuple[dict[str, str], dict[str, str], str]] = {
    "create": (REST, {"system": INTERACTION, "code": "create"}, "C"),
    "change": (REST, {"system": INTERACTION, "code": "update"}, "U"),
    "void": (REST, {"system": INTERACTION, "code": "delete"}, "D"),
    "query": (REST, {"system": INTERACTION, "code": "search-type"}, "E"),
    "access": (REST, {"system": INTERACTION, "code": "read"}, "R"),
    "print": (EXPORT, {"system": READ_KIND, "code": "print"}, "R"),
    "copy": (EXPORT, {"system": READ_KIND, "code": "copy"}, "R"),
    "export": (EXPORT, {"system": READ_KIND, "code": "export"}, "R"),
    "disclose": (EXPORT, {"system": READ_KIND, "code": "disclose"}, "R"),
}
PATIENT_TYPE = {"system": ENTITY_TYPE, "code": "1", "display": "Person"}
PATIENT_ROLE = {"system": OBJECT_ROLE, "code": "1", "display": "Patient"}
RECORD_TYPE = {"system": ENTITY_TYPE, "code": "2", "display": "System Object"}
RECORD_ROLE = {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"}
APPLICATION_SERVER = {"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}
# IHE BALP's user agent types (UserAgentTypesVS): who read is the information's recipient, who
# wrote acted as an agent; an event of the system alone has the application as its agent.
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
RECIPIENT = {
    "coding": [{"system": PARTICIPATION, "code": "IRCP", "display": "information recipient"}]
}
AGENT = {"coding": [{"system": ROLE_CLASS, "code": "AGNT", "display": "agent"}]}
APPLICATION = {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]}
META_SUBSETTED = {"tag": [SUBSETTED]}


def audit_event_id(position: int) -> str:
    return f"ledger-{position}"


def user_agent_type(action: str) -> dict[str, Any]:
    return RECIPIENT if ACTIONS[action][2] in ("R", "E") else AGENT


def subset_audit_event_id(position: int, patients: Sequence[str]) -> str:
    return subset_id("AuditEvent", audit_event_id(position), list(patients))


def audit_event(
    row: Sequence[Any],
    stream: str,
    patients: Sequence[str],
    context: Context,
    whole: bool = True,
    absent: Collection[str] = (),
) -> dict[str, Any]:
    """One audit view row as an AuditEvent naming ``patients`` (those in the export); when
    the event names other patients too (``whole`` false) it is a subset, under its own id.
    The ``absent`` patients have no Patient resource in the export: named by identifier."""
    r = dict(zip(COLUMNS, row, strict=True))
    kind, subtype, action = ACTIONS[r["action"]]
    resource: dict[str, Any] = {"resourceType": "AuditEvent"}
    if whole:
        resource["id"] = audit_event_id(r["position"])
    else:
        resource["id"] = subset_audit_event_id(r["position"], patients)
        resource["meta"] = META_SUBSETTED
    resource |= {
        "type": kind,
        "subtype": [subtype],
        "action": action,
        "recorded": r["event_time"],
        "outcome": "0" if r["outcome"] == "success" else "4",
    }
    if r["activity_time"] != r["event_time"]:
        resource["extension"] = [{"url": EXT + "activity-time", "valueString": r["activity_time"]}]
    if r["purpose"] is not None:
        purpose = r["purpose"]
        resource["purposeOfEvent"] = [
            {"coding": [{"system": PURPOSE, "code": purpose}]}
            if purpose in PURPOSE_CODES
            else {"text": purpose}
        ]
    agent: dict[str, Any] = (
        {"type": user_agent_type(r["action"]), "who": user_ref(r["user_id"]), "requestor": True}
        if r["user_id"] is not None
        else {"type": APPLICATION, "who": {"display": "Chartledger (system)"}, "requestor": False}
    )
    if r["source"] != "system":
        agent["altId"] = r["source"]  # the session the user acted in
    resource["agent"] = [agent]
    resource["source"] = {
        "site": context.origin,
        "observer": {
            "identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{context.practice_id}"},
            "display": "Chartledger",
        },
        "type": [APPLICATION_SERVER],
    }
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": uri_identifier(p)} if p in absent else patient_ref(p),
            "type": PATIENT_TYPE,
            "role": PATIENT_ROLE,
        }
        for p in patients
    ]
    entities.append(
        {
            "what": {"identifier": {"system": URI_SYSTEM, "value": f"urn:uuid:{stream}"}},
            "type": RECORD_TYPE,
            "role": RECORD_ROLE,
            "detail": [
                {"type": "ledger-position", "valueString": str(r["position"])},
                {"type": "event-type", "valueString": r["event_type"]},
                {"type": "data-category", "valueString": r["data_category"]},
            ],
        }
    )
    resource["entity"] = entities
    return resource


class AuditLines:
    """:func:`audit_event` as NDJSON text, for the export's hot path (one per exported event).

    The parts that depend only on the export (source) or the action (type, subtype, action) are
    encoded once; the rest is spliced in with the standard library's string encoder. The text
    parses to exactly :func:`audit_event`'s dict (tests/property/test_fhir_properties.py).
    """

    def __init__(self, context: Context) -> None:
        self.context = context
        self.kinds = {
            action: _inner({"type": kind, "subtype": [subtype], "action": code})
            for action, (kind, subtype, code) in ACTIONS.items()
        }
        probe = audit_event(
            (0, "", "", None, None, "create", "", "success", "system", None, "", None, None, None),
            "",
            [],
            context,
        )
        self.source = _inner({"source": probe["source"]})
        self.patient_tail = _inner({"type": PATIENT_TYPE, "role": PATIENT_ROLE})
        self.subsetted = _inner({"meta": META_SUBSETTED})
        self.user_agents = {
            action: '"type":' + _json(user_agent_type(action)) for action in ACTIONS
        }
        self.system_agent = '"type":' + _json(APPLICATION)
        self.record_tail = _inner({"type": RECORD_TYPE, "role": RECORD_ROLE})

    def line(
        self,
        row: Sequence[Any],
        stream: str,
        patients: Sequence[str],
        whole: bool = True,
        absent: Collection[str] = (),
    ) -> str:
        (position, event_time, activity_time, _, user_id, action, category, outcome, source,
         purpose, event_type, *_) = row  # fmt: skip  # the target and detail are not shown
        if whole:
            parts = ['{"resourceType":"AuditEvent","id":"', audit_event_id(position), '",']
        else:
            parts = ['{"resourceType":"AuditEvent","id":"']
            parts += [subset_audit_event_id(position, patients), '",', self.subsetted, ","]
        parts += [
            self.kinds[action],
            ',"recorded":',
            _text(event_time),
            ',"outcome":"0"' if outcome == "success" else ',"outcome":"4"',
        ]
        if activity_time != event_time:
            parts += [',"extension":[{"url":"', EXT, 'activity-time","valueString":']
            parts += [_text(activity_time), "}]"]
        if purpose is not None:
            parts.append(',"purposeOfEvent":[')
            if purpose in PURPOSE_CODES:
                parts += ['{"coding":[{"system":"', PURPOSE, '","code":', _text(purpose), "}]}]"]
            else:
                parts += ['{"text":', _text(purpose), "}]"]
        if user_id is not None:
            parts += [',"agent":[{', self.user_agents[action], ',"who":']
            parts += [_json(user_ref(user_id)), ',"requestor":true']
        else:
            parts += [',"agent":[{', self.system_agent]
            parts.append(',"who":{"display":"Chartledger (system)"},"requestor":false')
        if source != "system":
            parts += [',"altId":', _text(source)]
        parts += ["}],", self.source, ',"entity":[']
        for patient in patients:
            if patient in absent:
                parts += ['{"what":{"identifier":{"system":"', URI_SYSTEM, '","value":']
                parts += [_text(f"urn:uuid:{patient}"), "}},", self.patient_tail, "},"]
            else:
                parts += ['{"what":{"reference":', _text(f"Patient/{patient}"), "},"]
                parts += [self.patient_tail, "},"]
        parts += ['{"what":{"identifier":{"system":"', URI_SYSTEM, '","value":']
        parts += [_text(f"urn:uuid:{stream}"), "}},", self.record_tail, ',"detail":[']
        parts += ['{"type":"ledger-position","valueString":"', str(position), '"},']
        parts += ['{"type":"event-type","valueString":', _text(event_type), "},"]
        parts += ['{"type":"data-category","valueString":', _text(category), "}]}]}"]
        return "".join(parts)


_text = encode_basestring_ascii
_json = json.JSONEncoder(separators=(",", ":")).encode


def _inner(members: dict[str, Any]) -> str:
    """The members of an object as JSON text, without its braces, to splice into another."""
    return _json(members)[1:-1]
