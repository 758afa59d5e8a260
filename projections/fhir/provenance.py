"""Provenance: one for every amendment of the record (an addendum to a signed note, a corrected
lab value) and one for every decision on a HIPAA amendment request, linking what was made to
what it amends and to the request it answers (docs/EHI_EXPORT.md §5.12)."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid5

from projections.fhir.common import Tracked, coded, instant, target_ref, user_ref
from projections.fhir.communications import letter_id

DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
HIPAA_AMENDMENT = "https://www.ecfr.gov/current/title-45/section-164.526"
DECISIONS = uuid5(UUID(int=0), "chartledger amendment decisions")


def _provenance(
    ident: str, target: list[dict[str, Any]], recorded: str, agent: dict[str, Any], reason: str
) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "id": ident,
        "target": target,
        "recorded": recorded,
        "activity": coded(DATA_OPERATION, "UPDATE", "revise"),
        "reason": [{"text": reason}],
        "agent": [{"who": agent}],
    }


def _answering(provenance: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    if request_id is not None:
        provenance["policy"] = [HIPAA_AMENDMENT]
        provenance["entity"].append(
            {"role": "source", "what": {"reference": f"Communication/{request_id}"}}
        )
    return provenance


def addendum_provenance(
    note: Tracked, addendum: dict[str, Any], request_id: str | None
) -> dict[str, Any]:
    found = _provenance(
        str(addendum["addendum_id"]),
        [{"reference": f"DocumentReference/{addendum['addendum_id']}"}],
        instant(addendum["at"]),
        user_ref(addendum["author_id"]),
        addendum["reason"],
    )
    found["entity"] = [{"role": "revision", "what": {"reference": f"DocumentReference/{note.id}"}}]
    return _answering(found, request_id)


def correction_provenance(
    lab: Tracked, header: Any, event: Any, request_id: str | None
) -> dict[str, Any]:
    """The corrected value replaced the version it names; the value it replaced is shown."""
    before = next(h for h in lab.state.history if h["version"] == event.corrects_version)
    agent = event.corrected_by or (header.actor or "").removeprefix("user:") or None
    found = _provenance(
        str(event.correction_id),
        [{"reference": f"Observation/{lab.id}/_history/{header.version}"}],
        header.recorded,
        user_ref(agent) if agent else {"display": "Chartledger (system)"},
        event.reason,
    )
    found["entity"] = [
        {
            "role": "revision",
            "what": {
                "reference": f"Observation/{lab.id}/_history/{event.corrects_version}",
                "display": f"{before['value']} {before['unit']}",
            },
        }
    ]
    return _answering(found, request_id)


def decision_provenance(request: Tracked, header: Any, event: Any) -> dict[str, Any]:
    """A denial, or an acceptance whose amendment is not an addendum or correction exported
    here: the decision letter is the target, the request and the record it is about the sources."""
    name = header.type.rpartition(".")[2]
    r = request.state
    found = _provenance(
        str(uuid5(DECISIONS, f"{request.id}/{name}")),
        [{"reference": f"Communication/{letter_id(request.id, name)}"}],
        instant(event.decided_at),
        user_ref(event.decided_by),
        f"amendment request {name.lower()}",
    )
    found["entity"] = [
        {"role": "source", "what": {"reference": f"Communication/{request.id}"}},
        {"role": "source", "what": target_ref(r.target_type, r.target_id)},
    ]
    found["policy"] = [HIPAA_AMENDMENT]
    return found
