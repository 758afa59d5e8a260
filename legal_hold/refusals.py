"""Refused retention and hold-release steps, each recorded before the refusal is answered.

One aggregate per step, so the audit view's event type names the action that was refused
(``legal_hold.refusals:ApprovalRefusal.Refused``): the actor is the event's actor and its user
column, the patient (a payload field, never a subject: see legal_hold/retention.py) fills the
audit view's patient column, and ``reason`` says why in ids and numbers only.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import identifier, moment, optional_identifier, text
from legal_hold.matters import _checked


def _reason(reason: str) -> str:
    return str(_checked(text, reason, "reason"))[:2_000]


class AdoptionRefusal(Record):
    """An owner's adoption of a policy refused (below the floor), or a non-owner's attempt."""

    @classmethod
    def record(cls, *, policy_name: str, by: UUID, reason: str, at: datetime) -> AdoptionRefusal:
        return cls(
            policy_name=str(policy_name)[:200],
            by=_checked(identifier, by, "by"),
            reason=_reason(reason),
            at=_checked(moment, at, "at"),
        )

    @event("Refused")
    def __init__(self, policy_name: str, by: UUID, reason: str, at: datetime) -> None:
        self.policy_name = policy_name
        self.by = by
        self.reason = reason
        self.at = at

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.by),)


class ProposalRefusal(Record):
    """A disposal proposal refused: wrong role or session, an unadopted policy, a policy given
    in the request, the patient under a hold or not yet eligible."""

    @classmethod
    def record(
        cls,
        *,
        patient_id: UUID,
        policy_name: str | None,
        policy_version: int | None,
        by: UUID,
        reason: str,
        at: datetime,
    ) -> ProposalRefusal:
        return cls(
            patient_id=_checked(identifier, patient_id, "patient_id"),
            policy_name=None if policy_name is None else str(policy_name)[:200],
            policy_version=policy_version if type(policy_version) is int else None,
            by=_checked(identifier, by, "by"),
            reason=_reason(reason),
            at=_checked(moment, at, "at"),
        )

    @event("Refused")
    def __init__(
        self,
        patient_id: UUID,
        policy_name: str | None,
        policy_version: int | None,
        by: UUID,
        reason: str,
        at: datetime,
    ) -> None:
        self.patient_id = patient_id
        self.policy_name = policy_name
        self.policy_version = policy_version
        self.by = by
        self.reason = reason
        self.at = at

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.by),)


class ApprovalRefusal(Record):
    """An approval of a disposal proposal refused: unknown, expired or decided; the proposer
    themself; no owner among the two; wrong role or session; not eligible any more."""

    @classmethod
    def record(
        cls,
        *,
        proposal_id: UUID,
        patient_id: UUID | None,
        proposed_by: UUID | None,
        by: UUID,
        reason: str,
        at: datetime,
    ) -> ApprovalRefusal:
        return cls(
            proposal_id=_checked(identifier, proposal_id, "proposal_id"),
            patient_id=_checked(optional_identifier, patient_id, "patient_id"),
            proposed_by=_checked(optional_identifier, proposed_by, "proposed_by"),
            by=_checked(identifier, by, "by"),
            reason=_reason(reason),
            at=_checked(moment, at, "at"),
        )

    @event("Refused")
    def __init__(
        self,
        proposal_id: UUID,
        patient_id: UUID | None,
        proposed_by: UUID | None,
        by: UUID,
        reason: str,
        at: datetime,
    ) -> None:
        self.proposal_id = proposal_id
        self.patient_id = patient_id
        self.proposed_by = proposed_by
        self.by = by
        self.reason = reason
        self.at = at

    def ledger_subjects(self) -> Iterable[str]:
        found = {user_subject(self.by)}
        if self.proposed_by is not None:
            found.add(user_subject(self.proposed_by))
        return found


class ReleaseRefusal(Record):
    """A hold's release refused: asked by a risk manager who did not place it (an owner
    releases it, or its placer)."""

    @classmethod
    def record(
        cls, *, hold_id: UUID, placed_by: UUID, by: UUID, reason: str, at: datetime
    ) -> ReleaseRefusal:
        return cls(
            hold_id=_checked(identifier, hold_id, "hold_id"),
            placed_by=_checked(identifier, placed_by, "placed_by"),
            by=_checked(identifier, by, "by"),
            reason=_reason(reason),
            at=_checked(moment, at, "at"),
        )

    @event("Refused")
    def __init__(self, hold_id: UUID, placed_by: UUID, by: UUID, reason: str, at: datetime) -> None:
        self.hold_id = hold_id
        self.placed_by = placed_by
        self.by = by
        self.reason = reason
        self.at = at

    def ledger_subjects(self) -> Iterable[str]:
        return {user_subject(self.by), user_subject(self.placed_by)}
