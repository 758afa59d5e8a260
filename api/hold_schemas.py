"""HTTP models for legal holds and retention (``api/routers/holds.py``).

Kept apart from ``api/schemas.py`` only while that file is being edited elsewhere; they follow
its rules: ``extra="forbid"``, domain objects never serialised directly, ids rather than names.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import ConfigDict, Field

from api.schemas import NOT_BLANK, Day, Model
from legal_hold.holds import CATEGORIES

# -- matters ------------------------------------------------------------------------------------


class MatterIn(Model):
    name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=500)
    number: str = Field(
        min_length=1, pattern=NOT_BLANK, max_length=200, description="docket or claim number"
    )
    forum: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=500)


class MatterCloseIn(Model):
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=2_000)


class MatterOut(Model):
    matter_id: UUID
    name: str
    number: str
    forum: str | None
    opened_at: datetime
    opened_by: UUID
    closed_at: datetime | None
    closed_by: UUID | None
    close_reason: str | None


# -- holds --------------------------------------------------------------------------------------


# Scope.of's rule (legal_hold.holds), for the schema's readers: a patient, a custodian or all.
_NOT_EMPTY = {
    "anyOf": [
        {"required": ["patients"], "properties": {"patients": {"minItems": 1}}},
        {"required": ["custodians"], "properties": {"custodians": {"minItems": 1}}},
        {"required": ["all_patients"], "properties": {"all_patients": {"const": True}}},
    ]
}


class ScopeIn(Model):
    """What a hold preserves: at least one patient or custodian, or all patients.
    ``start``/``end``/``categories`` narrow what is produced, not what the disposal gate
    protects (disposal is of a patient's whole record)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_NOT_EMPTY)

    patients: list[UUID] = Field(default_factory=list, max_length=10_000)
    custodians: list[UUID] = Field(default_factory=list, max_length=1_000)
    all_patients: bool = False
    start: Day | None = None
    end: Day | None = Field(default=None, description="on or after start (422 if before)")
    categories: list[str] = Field(
        default_factory=list, max_length=50, json_schema_extra={"items": {"enum": list(CATEGORIES)}}
    )


class ScopeOut(Model):
    patients: list[UUID]
    custodians: list[UUID]
    all_patients: bool
    start: date | None
    end: date | None
    categories: list[str]


class HoldIn(Model):
    name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=500)
    scope: ScopeIn
    silent: bool = Field(default=False, description="send no notice to the custodians")
    reminder_days: int = Field(default=7, ge=1, le=365)
    escalation_days: int = Field(default=14, ge=1, le=365)
    notice: str | None = Field(
        default=None,
        min_length=1,
        pattern=NOT_BLANK,
        max_length=20_000,
        description="the first notice's text",
    )


class ScopeChangeIn(Model):
    scope: ScopeIn
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=2_000)


class ReleaseIn(Model):
    """Name no patients and no custodians to release the whole hold."""

    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=2_000)
    patients: list[UUID] = Field(default_factory=list, max_length=10_000)
    custodians: list[UUID] = Field(default_factory=list, max_length=1_000)


class NoticeIn(Model):
    text: str = Field(min_length=1, pattern=NOT_BLANK, max_length=20_000)


class AcknowledgeIn(Model):
    version: int = Field(ge=1, description="the notice version being acknowledged")


class HoldOut(Model):
    hold_id: UUID
    matter_id: UUID
    name: str
    silent: bool
    active: bool
    scope: ScopeOut
    reminder_days: int
    escalation_days: int
    placed_at: datetime
    placed_by: UUID
    released_at: datetime | None
    release_reason: str | None
    notice_version: int | None


class AcknowledgementOut(Model):
    hold_id: UUID
    custodian_id: UUID
    version: int
    acknowledged_at: datetime


class CustodianHoldOut(Model):
    """A hold as its custodian sees it: the notice to acknowledge, not the patients in scope."""

    hold_id: UUID
    matter_number: str
    matter_name: str
    name: str
    version: int
    notice: str
    notified_at: datetime | None
    acknowledged_at: datetime | None


class ScopeChangeOut(Model):
    at: datetime
    by: UUID
    change: str
    reason: str | None
    scope: ScopeOut


class NoticeVersionOut(Model):
    version: int
    at: datetime
    by: UUID


class DeliveryOut(Model):
    custodian_id: UUID
    version: int
    kind: str
    at: datetime


class AckRowOut(Model):
    custodian_id: UUID
    version: int
    at: datetime


class CustodianStatusOut(Model):
    custodian_id: UUID
    version: int | None
    notified_at: datetime | None
    acknowledged_at: datetime | None
    reminders: int
    escalated_at: datetime | None
    outstanding: bool
    delivery: Literal["acknowledged", "failing", "sent", "due", "none"] = Field(
        description="acknowledged the current notice; failing: a notice, reminder or "
        "escalation due for them fails to go out (the server tries again); sent: the current "
        "notice went to them; due: it goes with the next round; none: the hold sends nothing"
    )
    failing_since: datetime | None = Field(None, description="when the failing try began")
    tries: int = Field(0, description="the server's failed tries since then")
    failure: str | None = Field(None, description="the last failure's exception type")


class DueOut(Model):
    hold_id: UUID
    custodian_id: UUID
    version: int
    kind: str
    since: datetime


class HoldReportOut(Model):
    hold_id: UUID
    matter_id: UUID
    name: str
    silent: bool
    active: bool
    placed_at: datetime
    released_at: datetime | None
    release_reason: str | None
    scope_history: list[ScopeChangeOut]
    notices: list[NoticeVersionOut]
    deliveries: list[DeliveryOut]
    acknowledgements: list[AckRowOut]
    custodians: list[CustodianStatusOut]
    outstanding: list[UUID]
    due: list[DueOut]


class SentOut(Model):
    due: DueOut
    where: Literal["outbox", "smtp"]


# -- retention ----------------------------------------------------------------------------------


class RuleIn(Model):
    adult_years: int = Field(ge=0, le=200)
    minor_years: int = Field(ge=0, le=200)


class PolicyIn(Model):
    """A retention policy for an owner to adopt (``POST /retention/policies``): ``adult_years``
    after the last encounter; minors until majority plus ``minor_years`` (if later); ``rules``
    per record category override both. None may keep less than the practice's floor."""

    name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    adult_years: int = Field(ge=0, le=200)
    minor_years: int = Field(ge=0, le=200)
    majority_age: int = Field(default=18, ge=1, le=30)
    rules: dict[str, RuleIn] = Field(  # checked by api.routers.holds._policy
        default_factory=dict,
        max_length=50,
        json_schema_extra={"propertyNames": {"enum": list(CATEGORIES)}},
    )


class AdoptedRuleOut(Model):
    adult_years: int
    minor_years: int


class AdoptedPolicyOut(Model):
    name: str
    version: int
    majority_age: int
    rules: dict[str, AdoptedRuleOut]  # "*": every category not named
    adopted_by: UUID
    adopted_at: datetime


class FloorOut(Model):
    adult_years: int
    minor_years: int
    majority_age: int


class PoliciesOut(Model):
    floor: FloorOut
    policies: list[AdoptedPolicyOut]


REFUSED = "refused: name an adopted policy with policy and version instead"


def _policy_named(schema: dict[str, Any]) -> None:
    """The schema states what ``api.routers.holds._named`` enforces: policy and version, and
    none of the refused fields. The model itself takes them all, so that such a request is
    refused as what it is, and the refusal of a disposal recorded, rather than as malformed."""
    properties = schema["properties"]
    properties["policy"] = {"type": "string", "minLength": 1, "maxLength": 200}
    properties["version"] = {"type": "integer", "minimum": 1, "maximum": 1_000_000}
    for name, field in properties.items():
        if field.get("description") == REFUSED:
            properties[name] = {"not": {}, "description": REFUSED}
    schema["required"] = ["policy", "version"]


class PolicyRefIn(Model):
    """An adopted policy, by name and version. A policy's own rules in the request (the fields
    marked refused) are refused with a ``422 per-call-policy`` problem."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_policy_named)

    policy: str | None = Field(default=None, min_length=1, max_length=200)
    version: int | None = Field(default=None, ge=1, le=1_000_000)
    name: str | None = Field(default=None, max_length=200, description=REFUSED)
    adult_years: int | None = Field(default=None, description=REFUSED)
    minor_years: int | None = Field(default=None, description=REFUSED)
    majority_age: int | None = Field(default=None, description=REFUSED)
    rules: dict[str, RuleIn] | None = Field(default=None, max_length=50, description=REFUSED)


class ProposalOut(Model):
    proposal_id: UUID
    patient_id: UUID
    policy: str
    version: int
    proposed_by: UUID
    proposed_at: datetime
    expires_at: datetime
    state: Literal["pending", "approved", "expired"]
    approved_by: UUID | None
    approved_at: datetime | None
    disposal_id: UUID | None


class CandidateOut(Model):
    patient_id: UUID
    last_encounter: datetime | None
    retain_until: date | None
    eligible: bool
    held_by: list[UUID]
    disposable: bool


class DisposalOut(Model):
    disposal_id: UUID
    patient_id: UUID
    policy: str
    retain_until: date
    disposed_at: datetime
    disposed_by: UUID
    keys_destroyed: int
    description: str  # "disposed under policy P on D by user U"
    proposal_id: UUID | None = None  # the two-person proposal it executed


class DisposedEventOut(Model):
    position: int
    stream: str
    version: int
    type: str
    recorded: str
    actor: str | None
    disposal: str


class DisposedRecordOut(Model):
    patient_id: UUID
    disposals: list[DisposalOut]
    events: list[DisposedEventOut]
