"""Provenance: one for every amendment of the record (an addendum to a signed note, a corrected
lab value) and one for every decision on a HIPAA amendment request, linking what was made to
what it amends and to the request it answers (docs/EHI_EXPORT.md §5.12)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from projections.fhir.common import (
    US_CORE,
    Tracked,
    coded,
    instant,
    organization_ref,
    profiled,
    target_ref,
    user_ref,
)
from projections.fhir.communications import letter_id

DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
HIPAA_AMENDMENT = "https://www.ecfr.gov/current/title-45/section-164.526"
DECISIONS = uuid5(UUID(int=0), "chartledger amendment decisions")
PROFILE = US_CORE + "us-core-provenance"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
AUTHOR = {"coding": [{"system": PARTICIPANT, "code": "author", "display": "Author"}]}
SYSTEM = "Chartledger (system)"


def _provenance(
    ident: str,
    target: list[dict[str, Any]],
    recorded: str,
    user: str | None,
    reason: str,
    practice_id: str,
) -> dict[str, Any]:
    """The user who made the change is its author, on behalf of the practice (US Core's
    provenance-1: a Practitioner agent names its Organization); a change the system made
    alone has the practice as its author."""
    practice = organization_ref(practice_id)
    agent: dict[str, Any] = {"type": AUTHOR}
    if user is not None:
        agent["who"] = user_ref(user)
        agent["onBehalfOf"] = practice
    else:
        agent["who"] = {**practice, "display": SYSTEM}
    return profiled(
        {
            "resourceType": "Provenance",
            "id": ident,
            "target": target,
            "recorded": recorded,
            "activity": coded(DATA_OPERATION, "UPDATE", "revise"),
            "reason": [{"text": reason}],
            "agent": [agent],
        },
        PROFILE,
    )


def _answering(provenance: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        provenance["policy"] = [HIPAA_AMENDMENT]
        provenance["entity"].append(
            {"role": "source", "what": {"reference": f"Communication/{request_id}"}}
        )
    return provenance


def addendum_provenance(
    note: Tracked, addendum: dict[str, Any], request_id: str | None, practice_id: str
) -> dict[str, Any]:
    found = _provenance(
        str(addendum["addendum_id"]),
        [{"reference": f"DocumentReference/{addendum['addendum_id']}"}],
        instant(addendum["at"]),
        str(addendum["author_id"]),
        addendum["reason"],
        practice_id,
    )
    found["entity"] = [{"role": "revision", "what": {"reference": f"DocumentReference/{note.id}"}}]
    return _answering(found, request_id)


def observation_ref(lab: Tracked, version: int) -> dict[str, Any]:
    """A version of the Observation: versioned only when it is the version the export holds
    (its ``meta.versionId``); an earlier version is not in the export, so the reference is to
    the Observation, and the value it had is shown beside it (docs/EHI_EXPORT.md §5.12)."""
    if version == lab.state.version:
        return {"reference": f"Observation/{lab.id}/_history/{version}"}
    return {"reference": f"Observation/{lab.id}"}


def correction_provenance(
    lab: Tracked, header: Any, event: Any, request_id: str | None, practice_id: str
) -> dict[str, Any]:
    """The corrected value replaced the version it names; the value it replaced is shown."""
    before = next(h for h in lab.state.history if h["version"] == event.corrects_version)
    agent = event.corrected_by or (header.actor or "").removeprefix("user:") or None
    found = _provenance(
        str(event.correction_id),
        [observation_ref(lab, header.version)],
        header.recorded,
        str(agent) if agent else None,
        event.reason,
        practice_id,
    )
    replaced = observation_ref(lab, event.corrects_version)
    replaced["display"] = f"version {event.corrects_version}: {before['value']} {before['unit']}"
    found["entity"] = [{"role": "revision", "what": replaced}]
    return _answering(found, request_id)


def decision_provenance(
    request: Tracked, header: Any, event: Any, practice_id: str
) -> dict[str, Any]:
    """A denial, or an acceptance whose amendment is not an addendum or correction exported
    here: the decision letter is the target, the request and the record it is about the sources."""
    name = header.type.rpartition(".")[2]
    r = request.state
    found = _provenance(
        str(uuid5(DECISIONS, f"{request.id}/{name}")),
        [{"reference": f"Communication/{letter_id(request.id, name)}"}],
        instant(event.decided_at),
        str(event.decided_by),
        f"amendment request {name.lower()}",
        practice_id,
    )
    found["entity"] = [
        {"role": "source", "what": {"reference": f"Communication/{request.id}"}},
        {"role": "source", "what": target_ref(r.target_type, r.target_id)},
    ]
    found["policy"] = [HIPAA_AMENDMENT]
    return found
