"""Disposal by two people under a policy the practice adopted.

One person (a risk manager or an owner) **proposes** disposing of a patient's record under an
adopted policy (name and version); a second, different person **approves** it, and only then is
the record disposed of (``retention.dispose``), the approval saved in the disposal's own append.
One of the two must be an owner when the approval is made, both must be signed in with a TOTP
code, and the approval must come before the proposal expires. At approval the holds and the
policy are checked again on the record as it is then: a record now under a hold, or no longer
eligible (a new encounter), is not disposed of.

Every refusal is recorded first (``legal_hold/refusals.py``; ``DisposalRefusal`` when a hold
wins at execution) and then raised; nothing else is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import identifier, moment
from domain.users import User
from events.ledger import Ledger
from legal_hold.errors import (
    DisposalNotPermitted,
    HoldError,
    InvalidHoldEntry,
    NotEligible,
    NothingToDispose,
    ProposalStateError,
    UnderLegalHold,
)
from legal_hold.matters import _checked
from legal_hold.policies import adopted_policy
from legal_hold.refusals import ApprovalRefusal, ProposalRefusal
from legal_hold.retention import Disposal, Policy, assess, dispose, patient_record

DISPOSER_ROLES = ("risk_manager", "owner")


@dataclass(frozen=True)
class Actor:
    """Who is acting, as the edge established it: their roles now and whether their session
    was started with a TOTP code."""

    user_id: UUID
    roles: tuple[str, ...]
    with_totp: bool

    @property
    def is_owner(self) -> bool:
        return "owner" in self.roles


def check_may_propose(actor: Actor) -> None:
    if not any(r in actor.roles for r in DISPOSER_ROLES):
        raise DisposalNotPermitted("only a risk manager or an owner may propose a disposal")
    if not actor.with_totp:
        raise DisposalNotPermitted("proposing a disposal needs a session started with a TOTP code")


def check_may_approve(actor: Actor, proposer: User | None, proposed_by: UUID) -> None:
    """The two-person rule at approval: two different people, each a risk manager or an owner
    now, at least one of them an owner now, the approver in a TOTP session."""
    if not any(r in actor.roles for r in DISPOSER_ROLES):
        raise DisposalNotPermitted("only a risk manager or an owner may approve a disposal")
    if not actor.with_totp:
        raise DisposalNotPermitted("approving a disposal needs a session started with a TOTP code")
    if actor.user_id == proposed_by:
        raise DisposalNotPermitted("a disposal is approved by someone other than its proposer")
    proposer_roles = () if proposer is None or not proposer.active else tuple(proposer.roles)
    if not any(r in proposer_roles for r in DISPOSER_ROLES):
        raise DisposalNotPermitted(
            f"the proposer {proposed_by} is no longer an active risk manager or owner"
        )
    if not (actor.is_owner or "owner" in proposer_roles):
        raise DisposalNotPermitted("one of the two people disposing of a record must be an owner")


class DisposalProposal(Record):
    @classmethod
    def propose(
        cls, *, patient_id: UUID, policy: Policy, by: UUID, at: datetime, expires_at: datetime
    ) -> DisposalProposal:
        if policy.version is None:
            raise InvalidHoldEntry("a disposal names an adopted policy and its version")
        at = _checked(moment, at, "at")
        expires_at = _checked(moment, expires_at, "expires_at")
        if expires_at <= at:
            raise InvalidHoldEntry("a proposal expires after it is made")
        return cls(
            patient_id=_checked(identifier, patient_id, "patient_id"),
            policy_name=policy.name,
            policy_version=policy.version,
            proposed_by=_checked(identifier, by, "by"),
            proposed_at=at,
            expires_at=expires_at,
        )

    @event("Proposed")
    def __init__(
        self,
        patient_id: UUID,
        policy_name: str,
        policy_version: int,
        proposed_by: UUID,
        proposed_at: datetime,
        expires_at: datetime,
    ) -> None:
        self.patient_id = patient_id
        self.policy_name = policy_name
        self.policy_version = policy_version
        self.proposed_by = proposed_by
        self.proposed_at = proposed_at
        self.expires_at = expires_at
        self.approved_by: UUID | None = None
        self.approved_at: datetime | None = None
        self.disposal_id: UUID | None = None

    def ledger_subjects(self) -> Iterable[str]:
        found = {user_subject(self.proposed_by)}
        if self.approved_by is not None:
            found.add(user_subject(self.approved_by))
        return found

    def state(self, at: datetime) -> str:
        if self.approved_at is not None:
            return "approved"
        return "expired" if at >= self.expires_at else "pending"

    def approve(self, *, by: UUID, at: datetime, disposal_id: UUID) -> None:
        state = self.state(at)
        if state != "pending":
            raise ProposalStateError(f"disposal proposal {self.id} is {state}")
        self._approve(by=_checked(identifier, by, "by"), at=at, disposal_id=disposal_id)

    @event("Approved")
    def _approve(self, by: UUID, at: datetime, disposal_id: UUID) -> None:
        self.approved_by = by
        self.approved_at = at
        self.disposal_id = disposal_id


# -- Through the ledger -------------------------------------------------------------------------


def get_proposal(ledger: Application, proposal_id: UUID) -> DisposalProposal:
    try:
        found = ledger.repository.get(proposal_id)
    except AggregateNotFoundError:
        found = None
    if not isinstance(found, DisposalProposal):
        raise ProposalStateError(f"there is no disposal proposal {proposal_id}")
    return found


def proposals(ledger: Ledger) -> list[DisposalProposal]:
    with ledger.db.read() as c:
        c.execute(
            "SELECT originator_id FROM stored_events WHERE topic = ? ORDER BY originator_id",
            (f"{__name__}:DisposalProposal.Proposed",),
        )
        ids = [UUID(str(row[0])) for row in c.fetchall()]
    found = [get_proposal(ledger, i) for i in ids]
    return sorted(found, key=lambda p: p.proposed_at)


def _user(ledger: Application, user_id: UUID) -> User | None:
    try:
        found = ledger.repository.get(user_id)
    except AggregateNotFoundError:
        return None
    return found if isinstance(found, User) else None


def refuse_proposal(
    ledger: Application,
    *,
    patient_id: UUID,
    policy_name: str | None,
    policy_version: int | None,
    actor: Actor,
    refused: HoldError,
    at: datetime,
) -> HoldError:
    """Record the refusal of a proposal; the error is returned for the caller to raise."""
    ledger.save(
        ProposalRefusal.record(
            patient_id=patient_id,
            policy_name=policy_name,
            policy_version=policy_version,
            by=actor.user_id,
            reason=str(refused),
            at=at,
        )
    )
    return refused


def propose_disposal(
    ledger: Ledger,
    patient_id: UUID,
    *,
    policy_name: str,
    policy_version: int,
    actor: Actor,
    at: datetime,
    lifetime: timedelta,
) -> DisposalProposal:
    """Propose disposing of the patient's record under an adopted policy. Refused (and the
    refusal recorded) for the wrong role or session, an unadopted policy, a patient under a hold
    or not eligible now, or a record already disposed of."""
    try:
        check_may_propose(actor)
        policy = adopted_policy(ledger, policy_name, policy_version, at=at)
        candidate = assess(ledger, patient_id, policy, at=at)
        if candidate.held_by:
            raise UnderLegalHold(patient_id, list(candidate.held_by))
        if not patient_record(ledger, patient_id).live_keys:
            raise NothingToDispose(
                f"patient {patient_id} has no data key to destroy (already disposed of, or no "
                "such patient)"
            )
        if not candidate.eligible:
            raise NotEligible(
                f"policy {policy.label} does not allow disposing of patient {patient_id} at "
                f"{at.date()}"
                + (f" (kept until {candidate.retain_until})" if candidate.retain_until else "")
            )
    except HoldError as refused:
        raise refuse_proposal(
            ledger,
            patient_id=patient_id,
            policy_name=policy_name,
            policy_version=policy_version,
            actor=actor,
            refused=refused,
            at=at,
        ) from None
    proposal = DisposalProposal.propose(
        patient_id=patient_id, policy=policy, by=actor.user_id, at=at, expires_at=at + lifetime
    )
    ledger.save(proposal)
    return proposal


def approve_disposal(ledger: Ledger, proposal_id: UUID, *, actor: Actor, at: datetime) -> Disposal:
    """Approve a pending proposal and so dispose of the record, checking again, under the
    writer lock, that no hold covers it; refused (and recorded) otherwise."""
    patient_id: UUID | None = None
    proposed_by: UUID | None = None
    try:
        proposal = get_proposal(ledger, proposal_id)
        patient_id, proposed_by = proposal.patient_id, proposal.proposed_by
        check_may_approve(actor, _user(ledger, proposal.proposed_by), proposal.proposed_by)
        state = proposal.state(at)
        if state != "pending":
            raise ProposalStateError(f"disposal proposal {proposal_id} is {state}")
        policy = adopted_policy(ledger, proposal.policy_name, proposal.policy_version, at=at)

        def approval(disposal: Disposal) -> list[DisposalProposal]:
            again = get_proposal(ledger, proposal_id)  # fresh on every attempt of the append
            again.approve(by=actor.user_id, at=at, disposal_id=disposal.id)
            return [again]

        return dispose(
            ledger,
            proposal.patient_id,
            policy=policy,
            by=actor.user_id,
            at=at,
            proposal_id=proposal_id,
            with_disposal=approval,
        )
    except UnderLegalHold:
        raise  # recorded by dispose as a DisposalRefusal
    except HoldError as refused:
        ledger.save(
            ApprovalRefusal.record(
                proposal_id=proposal_id,
                patient_id=patient_id,
                proposed_by=proposed_by,
                by=actor.user_id,
                reason=str(refused),
                at=at,
            )
        )
        raise
