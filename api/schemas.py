"""HTTP models. Domain objects are never serialised directly; quantities travel as strings
(``"5.2"``, ``"mg/dL"``), never as floats."""

from __future__ import annotations

import base64
import re
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)
from typing_extensions import TypeAliasType

from api.auth import MAX_PASSWORD, MIN_PASSWORD
from domain.credentials import USERNAME
from domain.patients import SEXES
from domain.quantities import DECIMAL_RE
from domain.users import ROLES
from verify.canonical import format_timestamp


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Text the domain keeps must hold more than whitespace (domain.checks.text, str.isspace): a
# character outside this class. Spelt out, since \s differs between Python's, ECMA-262's and
# Rust's regular expressions (U+001C-U+001F, U+0085, U+FEFF).
NOT_BLANK = r"[^\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
# A quantity (domain.quantities.DECIMAL_RE), anchored as JSON Schema needs.
DECIMAL_PATTERN = f"^{DECIMAL_RE.pattern}$"
# A UCUM unit's characters: printable ASCII, no spaces. Its grammar and atoms
# (domain.quantities.check_unit) are more than a pattern can say: a unit that breaks them is a
# 422 invalid-quantity.
UCUM_CHARS = r"^[!-~]+$"
# A day or an instant in a path or query: the text RFC 3339 spells (JSON Schema's "date" and
# "date-time", an instant with its offset), not whatever pydantic would read as one ("0" is a
# Unix time to it).
DAY_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
INSTANT_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _spelt(shape: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, date):  # from Python (a datetime is a date too)
            return value
        if not isinstance(value, str) or shape.fullmatch(value) is None:
            raise ValueError(f"not an RFC 3339 {what}")
        return value

    return BeforeValidator(check)


Day = Annotated[date, _spelt(DAY_TEXT, "full-date")]
Instant = Annotated[datetime, _spelt(INSTANT_TEXT, "date-time with an offset")]
# A password being set: the rule api.auth.check_password enforces, stated in the schema too.
NewPassword = Annotated[str, Field(min_length=MIN_PASSWORD, max_length=MAX_PASSWORD)]


class KeyOut(Model):
    seq: int
    key_id: str
    previous: str | None
    from_size: int


class LoginIn(Model):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=12)


MAX_CODE = 64  # a recovery or approval code as typed (20 characters, dashes and spaces aside)


class RecoverIn(Model):
    username: str = Field(min_length=1, max_length=64)
    recovery_code: str = Field(min_length=1, max_length=MAX_CODE)
    new_password: NewPassword


class RecoverApprovedIn(Model):
    username: str = Field(min_length=1, max_length=64)
    approval_code: str = Field(min_length=1, max_length=MAX_CODE)
    new_password: NewPassword


class SessionOut(Model):
    token: str
    session_id: UUID
    user_id: UUID


class RecoveredOut(SessionOut):
    totp_secret: str = Field(description="base32; the account's new secret, shown once")
    totp_uri: str


class RecoveryApprovalOut(Model):
    user_id: UUID
    approval_code: str = Field(
        description="shown once: hand it to the owner in person; it works once, until expires_at"
    )
    expires_at: datetime


class RecoveryCodesIn(Model):
    password: str = Field(
        min_length=1, max_length=1024, description="the caller's current password, again"
    )


class RecoveryCodesOut(Model):
    recovery_codes: list[str] = Field(
        description="shown once: each works once at POST /auth/recover; every earlier code no "
        "longer works. Keep them offline."
    )


class MeOut(Model):
    user_id: UUID
    roles: list[str]
    session_id: UUID
    recovery_codes_remaining: int | None = Field(
        default=None,
        description="how many unused recovery codes the caller's account holds (a count only); "
        "an owner at 0 should issue new ones at POST /auth/recovery-codes",
    )


class UserIn(Model):
    """A new user: no password (they set their own, spending the enrollment code)."""

    username: str = Field(min_length=1, max_length=64, pattern=f"^{USERNAME.pattern}$")
    name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    role: str = Field(json_schema_extra={"enum": list(ROLES)})  # checked by domain.users


class UserOut(Model):
    user_id: UUID
    username: str
    name: str
    roles: list[str]
    active: bool


class EnrollmentCodeOut(Model):
    enrollment_code: str = Field(
        description="shown once: hand it to the user, who spends it at POST /auth/enroll"
    )
    expires_at: datetime


class NewUserOut(UserOut, EnrollmentCodeOut):
    pass


class ResetIn(Model):
    authenticator: StrictBool = Field(
        default=False,
        description="also forget the user's authenticator, so that they enroll a new one "
        "(owners only; an owner's by a second owner)",
    )


class ResetOut(UserOut, EnrollmentCodeOut):
    authenticator_reset: bool


class EnrollIn(Model):
    username: str = Field(min_length=1, max_length=64)
    enrollment_code: str = Field(min_length=1, max_length=MAX_CODE)
    new_password: NewPassword


class EnrolledOut(Model):
    user_id: UUID
    username: str
    totp_secret: str | None = Field(
        description="base32; only when the account held no authenticator: shown this once, "
        "for the user's own authenticator app"
    )
    totp_uri: str | None


class PasswordChangeIn(Model):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: NewPassword


class RoleIn(Model):
    role: str = Field(json_schema_extra={"enum": list(ROLES)})  # checked by domain.users


class ReasonIn(Model):
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=500)


def _own_change_required(schema: dict[str, Any]) -> None:
    """PasswordIn's schema: current_password and new_password given, as strings."""
    for name in ("current_password", "new_password"):
        field = schema["properties"][name]
        text = next(s for s in field.pop("anyOf") if s.get("type") == "string")
        field.update(text)
        field.pop("default", None)
    schema["required"] = ["current_password", "new_password"]


class PasswordIn(Model):
    """``PUT /users/{id}/password``: one's own change, as ``POST /auth/password``. ``password``
    (what it once took, to set anyone's) is still read, so that such a request is refused as
    what it is (403, recorded) rather than as malformed; the schema says current_password and
    new_password are required, which the route checks after that refusal."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_own_change_required)

    current_password: str | None = Field(default=None, min_length=1, max_length=1024)
    new_password: NewPassword | None = None
    password: str | None = Field(default=None, min_length=1, max_length=1024)


# -- clinical --------------------------------------------------------------------------------

Purpose = Literal["TREAT", "HPAYMT", "HOPERAT", "PATRQT", "HLEGAL", "HRESCH", "PUBHLTH", "HCOMPL"]


class IdentifierIn(Model):
    system: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    value: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)


class PatientIn(Model):
    mrn: str = Field(min_length=1, pattern=NOT_BLANK, max_length=64)
    given_name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    family_name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    birth_date: Day
    sex: str = Field(  # checked by domain.patients, which names the problem
        description="female, male, other or unknown", json_schema_extra={"enum": list(SEXES)}
    )
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=20)


class PatientOut(Model):
    patient_id: UUID
    mrn: str
    given_name: str
    family_name: str
    birth_date: date
    sex: str


class LabIn(Model):
    patient_id: UUID
    loinc_code: str = Field(min_length=1, pattern=NOT_BLANK, max_length=20)
    test_name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    value: str = Field(
        min_length=1, pattern=DECIMAL_PATTERN, max_length=40, description='a decimal string: "5.2"'
    )
    unit: str = Field(
        min_length=1, pattern=UCUM_CHARS, max_length=40, description='a UCUM unit: "mg/dL"'
    )
    performing_lab: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    reference_range: str | None = Field(default=None, max_length=100)
    abnormal_flag: str | None = Field(default=None, max_length=10)
    collected_at: str | None = Field(default=None, max_length=40)
    source_format: str = Field(default="manual", min_length=1, pattern=NOT_BLANK, max_length=40)
    source_message: str | None = Field(
        default=None, max_length=100_000, description="the original message, as text"
    )


class LabOut(Model):
    lab_id: UUID
    patient_id: UUID
    value: str
    unit: str
    value_version: int


class ConversionIn(Model):
    to_unit: str = Field(min_length=1, pattern=UCUM_CHARS, max_length=40)


class ConversionOut(Model):
    lab_id: UUID
    from_value: str
    from_unit: str
    converted_value: str
    to_unit: str
    factor: str
    rule: str


class NoteIn(Model):
    patient_id: UUID
    kind: str = Field(min_length=1, pattern=NOT_BLANK, max_length=60)
    text: str = Field(min_length=1, pattern=NOT_BLANK, max_length=100_000)


class NoteEditIn(Model):
    text: str = Field(min_length=1, pattern=NOT_BLANK, max_length=100_000)


class AddendumIn(Model):
    text: str = Field(min_length=1, pattern=NOT_BLANK, max_length=100_000)
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=1_000)


class NoteOut(Model):
    note_id: UUID
    patient_id: UUID
    signed: bool
    addenda: int


class ChartEntryOut(Model):
    entry_id: UUID
    kind: str
    version: int
    first_recorded: str
    last_recorded: str
    state: dict[str, Any] = Field(
        description="the entry's fields; bytes as base64, decimals and quantities as strings"
    )
    original_times: dict[str, dict[str, str | None]] = Field(
        default_factory=dict,
        description="source times (a lab's collected) as received and as read "
        "(docs/IMPORTS.md §11), next to first_recorded",
    )


class ChartOut(Model):
    patient_id: UUID
    as_of: datetime | None
    entries: list[ChartEntryOut]


class AuditRowOut(Model):
    position: int
    event_time: str
    activity_time: str
    patient_id: str | None
    user_id: str | None = Field(
        description="the actor; for an anonymous failure (a failed login, a lockout), the user "
        "whose account was targeted"
    )
    action: str
    data_category: str
    outcome: str
    source: str
    purpose: str | None
    event_type: str
    target_user_id: str | None = Field(
        description="the users the event concerns other than its actor (for a refused "
        "administrative action, the user it was aimed at)"
    )
    detail: str | None = Field(
        description="for a refused administrative action, the action attempted and what it "
        "asked for; for an enrollment code spent, who issued it; for a role refusal, the route "
        "and the roles it needs; for a refused token, the client address"
    )
    reason: str | None = Field(
        default=None,
        description="why a failure failed (e.g. password, totp, revoked, wrong-token, role, "
        "break-glass-required, unknown-session), or why a session ended",
    )


class AccessRowOut(Model):
    event_time: str
    user_id: str | None
    action: str
    data_category: str
    purpose: str | None
    outcome: str


def jsonable(value: Any) -> Any:
    """A chart entry's state as JSON: no floats ever appear (the ledger has none)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        return format_timestamp(value)
    if isinstance(value, UUID | Decimal | date):
        return str(value)
    return value


# -- break-glass ------------------------------------------------------------------------------


class BreakGlassIn(Model):
    reason: str = Field(
        min_length=10, pattern=NOT_BLANK, max_length=1_000, description="why this is an emergency"
    )
    minutes: int = Field(default=60, ge=1, le=240, description="how long access lasts")


class BreakGlassOut(Model):
    emergency_access_id: UUID
    user_id: UUID
    patient_id: UUID
    session_id: UUID
    reason: str
    declared_at: datetime
    until: datetime
    reviewed_by: UUID | None = None
    reviewed_at: datetime | None = None
    outcome: str | None = None
    review_note: str | None = None


class ReviewIn(Model):
    outcome: Literal["appropriate", "inappropriate"]
    note: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=2_000)


class AlertOut(Model):
    alert_id: UUID
    kind: str
    about: UUID
    user_id: UUID
    patient_id: UUID | None
    raised_at: datetime
    acknowledged_by: UUID | None
    acknowledged_at: datetime | None


# -- chart entries, schedule, documents, messages, amendments, disclosures ------------------


class EntryOut(Model):
    entry_id: UUID
    patient_id: UUID | None
    kind: str
    version: int


class ProblemIn(Model):
    patient_id: UUID
    description: str = Field(min_length=1, pattern=NOT_BLANK, max_length=1_000)
    code_system: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=200)
    code: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)
    onset: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)


class ResolveIn(Model):
    resolved_on: Day | None = None
    note: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=1_000)


class MedicationIn(Model):
    patient_id: UUID
    drug: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    dose_value: str = Field(
        min_length=1, pattern=DECIMAL_PATTERN, max_length=40, description='a decimal string: "500"'
    )
    dose_unit: str = Field(
        min_length=1, pattern=UCUM_CHARS, max_length=40, description='a UCUM unit: "mg"'
    )
    started_on: Day
    code_system: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=200)
    code: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)
    route: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)
    frequency: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)


class DoseChangeIn(Model):
    dose_value: str = Field(min_length=1, pattern=DECIMAL_PATTERN, max_length=40)
    dose_unit: str = Field(min_length=1, pattern=UCUM_CHARS, max_length=40)
    changed_on: Day
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=1_000)
    frequency: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)


class StopIn(Model):
    stopped_on: Day
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=1_000)


class AllergyIn(Model):
    patient_id: UUID
    substance: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    code_system: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=200)
    code: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)
    reaction: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=500)
    severity: Literal["mild", "moderate", "severe"] | None = None


class VitalIn(Model):
    patient_id: UUID
    loinc_code: str = Field(min_length=1, pattern=NOT_BLANK, max_length=20)
    name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=200)
    value: str = Field(min_length=1, pattern=DECIMAL_PATTERN, max_length=40)
    unit: str = Field(min_length=1, pattern=UCUM_CHARS, max_length=40)
    measured_at: Instant


class AppointmentIn(Model):
    patient_id: UUID
    provider_id: UUID
    start: Instant
    end: Instant
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=500)


class RescheduleIn(Model):
    start: Instant
    end: Instant


class AppointmentOut(Model):
    appointment_id: UUID
    patient_id: UUID
    provider_id: UUID
    start: datetime
    end: datetime
    status: str


class ScheduleRowOut(Model):
    appointment_id: str
    provider_id: str
    patient_id: str
    starts: str
    ends: str
    status: str
    reason: str | None
    booked_at: str
    changed_at: str


class ScheduleOut(Model):
    provider_id: UUID
    day: date
    appointments: list[ScheduleRowOut]
    conflicts: list[list[str]]


class DocumentOut(Model):
    document_id: UUID
    patient_id: UUID | None
    sha256: str
    size: int
    media_type: str
    original_filename: str


# Thread.start's rules on its participants (domain.messages), stated for the schema's readers.
_SOME = {"minItems": 1}
_PARTICIPANTS = {
    "anyOf": [
        {"required": ["patient_ids"], "properties": {"patient_ids": _SOME}},
        {"required": ["user_ids"], "properties": {"user_ids": _SOME}},
    ],
    "if": {"required": ["kind"], "properties": {"kind": {"const": "secure"}}},
    "then": {
        "required": ["user_ids"],
        "properties": {"user_ids": _SOME},
        "anyOf": [
            {"required": ["patient_ids"], "properties": {"patient_ids": _SOME}},
            {"properties": {"user_ids": {"minItems": 2}}},
        ],
    },
}


class ThreadIn(Model):
    """At least one participant, none twice; a secure thread has a user and someone else."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_PARTICIPANTS)

    kind: Literal["secure", "email", "sms"]
    topic: str = Field(min_length=1, pattern=NOT_BLANK, max_length=300)
    patient_ids: list[UUID] = Field(
        default_factory=list, max_length=20, json_schema_extra={"uniqueItems": True}
    )
    user_ids: list[UUID] = Field(
        default_factory=list, max_length=20, json_schema_extra={"uniqueItems": True}
    )


class ThreadOut(Model):
    thread_id: UUID
    kind: str
    topic: str
    patient_ids: list[UUID]
    user_ids: list[UUID]
    messages: int


class PostIn(Model):
    body: str = Field(min_length=1, pattern=NOT_BLANK, max_length=100_000)


# An SMS provider's metadata as it sent it. JSON numbers with a fraction or an exponent would
# reach us as floats and lose their digits ("0.10" becomes 0.1), so only whole numbers are taken
# as numbers; anything else must come as the provider's text.
MetadataValue = TypeAliasType(
    "MetadataValue",
    "StrictBool | StrictInt | StrictStr | list[MetadataValue] | dict[str, MetadataValue] | None",
)


class SmsIn(Model):
    from_number: str = Field(min_length=1, pattern=NOT_BLANK, max_length=40)
    to_number: str = Field(min_length=1, pattern=NOT_BLANK, max_length=40)
    body: str = Field(max_length=10_000)
    sent_at: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=60)
    provider_metadata: dict[str, MetadataValue] = Field(default_factory=dict)


class MessageOut(Model):
    message_id: UUID
    kind: str
    fields: dict[str, Any] = Field(description="the event's fields; bytes as base64")
    recorded_at: str | None = Field(default=None, description="when the ledger recorded it")
    original_times: dict[str, dict[str, str | None]] = Field(
        default_factory=dict,
        description="source times (sent, received) as received and as read (docs/IMPORTS.md §11)",
    )


class ThreadReadOut(ThreadOut):
    entries: list[MessageOut]


class AmendmentIn(Model):
    patient_id: UUID
    target_type: Literal[
        "note",
        "lab_result",
        "problem",
        "medication",
        "allergy",
        "vital_sign",
        "patient",
        "document",
    ]
    target_id: UUID
    requested_change: str = Field(min_length=1, pattern=NOT_BLANK, max_length=10_000)
    reason: str = Field(min_length=1, pattern=NOT_BLANK, max_length=10_000)
    received_at: Instant


class AcceptIn(Model):
    amendment_id: UUID = Field(description="the addendum_id or correction_id made")
    note: str | None = Field(default=None, min_length=1, pattern=NOT_BLANK, max_length=2_000)


class DenyIn(Model):
    basis: Literal[
        "not_created_by_covered_entity",
        "not_in_designated_record_set",
        "not_available_for_inspection",
        "accurate_and_complete",
    ]
    denial_text: str = Field(min_length=1, pattern=NOT_BLANK, max_length=10_000)


class StatementIn(Model):
    text: str = Field(min_length=1, pattern=NOT_BLANK, max_length=10_000)


class AmendmentOut(Model):
    amendment_request_id: UUID
    patient_id: UUID
    status: str
    has_disagreement: bool
    has_rebuttal: bool


class DisclosureIn(Model):
    patient_id: UUID
    disclosed_at: Instant
    recipient_name: str = Field(min_length=1, pattern=NOT_BLANK, max_length=300)
    recipient_address: str | None = Field(
        default=None, min_length=1, pattern=NOT_BLANK, max_length=1_000
    )
    description: str = Field(min_length=1, pattern=NOT_BLANK, max_length=2_000)
    purpose: str = Field(min_length=1, pattern=NOT_BLANK, max_length=1_000)


class DisclosureRowOut(Model):
    position: int
    patient_id: str
    disclosed_at: str
    recipient_name: str
    recipient_address: str | None
    description: str
    purpose: str
    disclosed_by: str | None


class CheckpointOut(Model):
    size: int
    note: str


class VerificationOut(Model):
    ok: bool
    size: int
    events: int
    checkpoints: int
    keys: int
    root: str
    payloads_opened: int
    payloads_disposed: int
    problems: list[str]


# -- care team (api/routers/care_team.py) ---------------------------------------------------


class CareMemberIn(Model):
    user_id: UUID


class CareMemberOut(Model):
    patient_id: UUID
    user_id: UUID | None
    active: bool
