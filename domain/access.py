"""Reads are events (DESIGN.md, rule 6), and disclosures are accounted for (HIPAA 164.528).

Every chart opening, search, print, copy, export or disclosure is one new ``Access`` aggregate
recording who, when, which data category and the purpose of use, whether it succeeded or not.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, patient_subject, user_subject
from domain.checks import (
    choice,
    identifier,
    moment,
    optional_identifier,
    optional_text,
    payload,
    text,
)
from domain.errors import InvalidEntry

ACTIONS = ("query", "access", "print", "copy", "export", "disclose")
OUTCOMES = ("success", "failure")
DATA_CATEGORIES = (
    "chart",
    "demographics",
    "notes",
    "problems",
    "medications",
    "allergies",
    "vitals",
    "labs",
    "documents",
    "messages",
    "appointments",
    "amendments",
    "audit",
)
# HL7 v3 PurposeOfUse (terminology.hl7.org/ValueSet/v3-PurposeOfUse); ETREAT is break-glass.
PURPOSES_OF_USE = (
    "TREAT",
    "ETREAT",
    "HPAYMT",
    "HOPERAT",
    "PATRQT",
    "HLEGAL",
    "HRESCH",
    "PUBHLTH",
    "HCOMPL",
)


class Access(Record):
    @classmethod
    def record(
        cls,
        *,
        user_id: UUID,
        action: str,
        data_category: str,
        purpose_of_use: str,
        at: datetime,
        patient_id: UUID | None = None,
        outcome: str = "success",
        detail: dict[str, Any] | None = None,
    ) -> Access:
        detail = {} if detail is None else detail
        if type(detail) is not dict:
            raise InvalidEntry("detail must be a map")
        return cls(
            user_id=identifier(user_id, "user_id"),
            patient_id=optional_identifier(patient_id, "patient_id"),
            action=choice(action, "action", ACTIONS),
            data_category=choice(data_category, "data_category", DATA_CATEGORIES),
            purpose_of_use=choice(purpose_of_use, "purpose_of_use", PURPOSES_OF_USE),
            outcome=choice(outcome, "outcome", OUTCOMES),
            at=moment(at, "at"),
            detail=payload(detail, "detail"),
        )

    @event("Recorded")
    def __init__(
        self,
        user_id: UUID,
        patient_id: UUID | None,
        action: str,
        data_category: str,
        purpose_of_use: str,
        outcome: str,
        at: datetime,
        detail: dict[str, Any],
    ) -> None:
        self.user_id = user_id
        self.patient_id = patient_id
        self.action = action
        self.data_category = data_category
        self.purpose_of_use = purpose_of_use
        self.outcome = outcome
        self.at = at
        self.detail = detail

    def ledger_subjects(self) -> Iterable[str]:
        if self.patient_id is None:
            return (user_subject(self.user_id),)
        return (patient_subject(self.patient_id), user_subject(self.user_id))


class Disclosure(Record):
    @classmethod
    def record(
        cls,
        *,
        patient_id: UUID,
        disclosed_at: datetime,
        recipient_name: str,
        description: str,
        purpose: str,
        recipient_address: str | None = None,
        by: UUID | None = None,
    ) -> Disclosure:
        return cls(
            patient_id=identifier(patient_id, "patient_id"),
            disclosed_at=moment(disclosed_at, "disclosed_at"),
            recipient_name=text(recipient_name, "recipient_name"),
            recipient_address=optional_text(recipient_address, "recipient_address"),
            description=text(description, "description"),
            purpose=text(purpose, "purpose"),
            by=optional_identifier(by, "by"),
        )

    @event("Recorded")
    def __init__(
        self,
        patient_id: UUID,
        disclosed_at: datetime,
        recipient_name: str,
        recipient_address: str | None,
        description: str,
        purpose: str,
        by: UUID | None,
    ) -> None:
        self.patient_id = patient_id
        self.disclosed_at = disclosed_at
        self.recipient_name = recipient_name
        self.recipient_address = recipient_address
        self.description = description
        self.purpose = purpose
        self.by = by

    def ledger_subjects(self) -> Iterable[str]:
        subjects = [patient_subject(self.patient_id)]
        if self.by is not None:
            subjects.append(user_subject(self.by))
        return subjects


# E2147 actions a refused attempt can name: a read, or a write to the chart.
REFUSED_ACTIONS = ("access", "query", "create", "change")
# no-care-relationship: an import naming a patient the importer has no care relationship with
# (an import cannot be made under break-glass: an owner imports for them).
REFUSAL_REASONS = (
    "break-glass-required",
    "no-chart-role",
    "not-the-author",
    "self-assignment",
    "no-care-relationship",
)


class Refusal(Record):
    """An attempt on a patient's record that was refused: who, what, why, and on which entry.

    Only the refusal is written (nothing of what was attempted), so the audit view shows the
    attempt under the user and the patient without the ledger holding anything half done.
    """

    @classmethod
    def record(
        cls,
        *,
        user_id: UUID,
        patient_id: UUID,
        action: str,
        data_category: str,
        reason: str,
        at: datetime,
        target_id: UUID | None = None,
    ) -> Refusal:
        return cls(
            user_id=identifier(user_id, "user_id"),
            patient_id=identifier(patient_id, "patient_id"),
            action=choice(action, "action", REFUSED_ACTIONS),
            data_category=choice(data_category, "data_category", DATA_CATEGORIES),
            reason=choice(reason, "reason", REFUSAL_REASONS),
            at=moment(at, "at"),
            target_id=optional_identifier(target_id, "target_id"),
        )

    @event("Refused")
    def __init__(
        self,
        user_id: UUID,
        patient_id: UUID,
        action: str,
        data_category: str,
        reason: str,
        at: datetime,
        target_id: UUID | None,
    ) -> None:
        self.user_id = user_id
        self.patient_id = patient_id
        self.action = action
        self.data_category = data_category
        self.reason = reason
        self.at = at
        self.target_id = target_id

    def ledger_subjects(self) -> Iterable[str]:
        return (patient_subject(self.patient_id), user_subject(self.user_id))
