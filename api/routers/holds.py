"""Legal holds and retention over HTTP (``legal_hold/``): matters, holds and their scope,
notices and acknowledgements, reminders, hold reports, retention runs and disposal.

Holds are for the ``risk_manager`` role (an owner without it is refused too), except a
custodian's own notices and their acknowledgement, which any signed-in custodian does for
themself, and a hold's release, which its placer or an owner makes. Retention policies are
adopted by owners; disposal is proposed and approved by two people, one of them an owner
(legal_hold/disposal_approvals.py). Every change is a ledger event
acted by the caller's session; every read of holds or retention (they name patients by id) is
recorded first, as a query of category ``audit`` with purpose ``HLEGAL``.

Reads of a disposed record name the patient only in the read's detail, never as a subject: an
event about the patient would be sealed under a fresh key of the patient the disposal shredded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, Request, status

from api.auth import Principal, load, now
from api.deps import Caller, CurrentUser, LedgerDep, RunnerDep, Services, ServicesDep
from api.errors import Forbidden, NotFound
from api.hold_schemas import (
    AcknowledgeIn,
    AcknowledgementOut,
    AckRowOut,
    AdoptedPolicyOut,
    AdoptedRuleOut,
    CandidateOut,
    CustodianHoldOut,
    CustodianStatusOut,
    DeliveryOut,
    DisposalOut,
    DisposedEventOut,
    DisposedRecordOut,
    DueOut,
    FloorOut,
    HoldIn,
    HoldOut,
    HoldReportOut,
    MatterCloseIn,
    MatterIn,
    MatterOut,
    NoticeIn,
    NoticeVersionOut,
    PoliciesOut,
    PolicyIn,
    PolicyRefIn,
    ProposalOut,
    ReleaseIn,
    ScopeChangeIn,
    ScopeChangeOut,
    ScopeIn,
    ScopeOut,
    SentOut,
)
from api.openapi import problems
from api.refused_requests import refuse_role
from api.roles import require_role
from api.routing import Router
from domain.access import Access
from domain.sessions import Session
from events.ledger import Ledger
from legal_hold import disposal_approvals as approvals
from legal_hold import holds as lh
from legal_hold import policies
from legal_hold.custodians import Due, report
from legal_hold.custodians import status as custodian_status
from legal_hold.disposal_approvals import Actor, DisposalProposal
from legal_hold.errors import BelowFloor, DisposalNotPermitted, InvalidHoldEntry, PerCallPolicy
from legal_hold.hold_releases import RELEASER_ROLES
from legal_hold.hold_releases import release as release_hold
from legal_hold.holds import CATEGORIES, Hold, Scope
from legal_hold.matters import Matter
from legal_hold.notice_failures import delivery_states, failing
from legal_hold.notices import outbox_from_env, send_due_alone
from legal_hold.refusals import AdoptionRefusal
from legal_hold.retention import Disposal, Policy, Rule, disposal_run, disposals
from legal_hold.retention import disposed_events as disposed_events_of
from projections.runner import Runner

router = Router(tags=["legal holds"])
ROLE = "risk_manager"


def require_risk_manager(principal: CurrentUser, request: Request) -> Principal:
    if ROLE not in principal.roles:
        Caller.of(request, None).refuse_role(principal, (ROLE,))  # recorded, as api/roles.py
        raise Forbidden(f"this needs the role {ROLE}")
    return principal


RiskManager = Annotated[Principal, Depends(require_risk_manager)]
# Risk managers and owners: who proposes and approves disposals, and reads the policies.
Disposer = Annotated[Principal, require_role("risk_manager")]


def record_read(ledger: Ledger, principal: Principal, what: str, **detail: str) -> None:
    """Record a read of holds or retention (they name patients by id) before answering it."""
    read = Access.record(
        user_id=principal.user_id,
        action="query",
        data_category="audit",
        purpose_of_use="HLEGAL",
        at=now(),
        detail={"legal_hold": what, **detail},
    )
    with principal.acting():
        ledger.save(read)


# -- conversions --------------------------------------------------------------------------------


def scope_of(body: ScopeIn) -> Scope:
    """The hold scope a request describes (the API's body, or the console's form as one)."""
    return Scope.of(
        patients=body.patients,
        custodians=body.custodians,
        all_patients=body.all_patients,
        start=body.start,
        end=body.end,
        categories=body.categories,
    )


def _scope_out(scope: Scope | dict[str, Any]) -> ScopeOut:
    data = scope.to_payload() if isinstance(scope, Scope) else scope
    return ScopeOut(**data)


def _matter_out(m: Matter) -> MatterOut:
    return MatterOut(
        matter_id=m.id,
        name=m.name,
        number=m.number,
        forum=m.forum,
        opened_at=m.opened_at,
        opened_by=m.opened_by,
        closed_at=m.closed_at,
        closed_by=m.closed_by,
        close_reason=m.close_reason,
    )


def _hold_out(h: Hold) -> HoldOut:
    return HoldOut(
        hold_id=h.id,
        matter_id=h.matter_id,
        name=h.name,
        silent=h.silent,
        active=h.active,
        scope=_scope_out(h.scope),
        reminder_days=h.reminder_days,
        escalation_days=h.escalation_days,
        placed_at=h.placed_at,
        placed_by=h.placed_by,
        released_at=h.released_at,
        release_reason=h.release_reason,
        notice_version=h.current_version,
    )


def _due_out(d: Due) -> DueOut:
    return DueOut(
        hold_id=d.hold_id,
        custodian_id=d.custodian_id,
        version=d.version,
        kind=d.kind,
        since=d.since,
    )


def _policy(body: PolicyIn) -> Policy:
    unknown = [c for c in body.rules if c not in CATEGORIES]
    if unknown:
        raise InvalidHoldEntry(f"policy rules must name categories among {', '.join(CATEGORIES)}")
    rules = {c: Rule(r.adult_years, r.minor_years) for c, r in body.rules.items()}
    rules["*"] = Rule(body.adult_years, body.minor_years)
    return Policy(body.name, rules, body.majority_age)


def _disposal_out(d: Disposal) -> DisposalOut:
    return DisposalOut(
        disposal_id=d.id,
        patient_id=d.patient_id,
        policy=d.policy_label,
        retain_until=d.retain_until,
        disposed_at=d.at,
        disposed_by=d.by,
        keys_destroyed=len(d.key_names),
        description=d.describe(),
        proposal_id=getattr(d, "proposal_id", None),
    )


# -- matters ------------------------------------------------------------------------------------


@router.post("/matters", status_code=status.HTTP_201_CREATED)
def open_matter(body: MatterIn, principal: RiskManager, ledger: LedgerDep) -> MatterOut:
    with principal.acting():
        matter = lh.open_matter(
            ledger,
            name=body.name,
            number=body.number,
            forum=body.forum,
            at=now(),
            by=principal.user_id,
        )
    return _matter_out(matter)


@router.get("/matters")
def list_matters(principal: RiskManager, ledger: LedgerDep) -> list[MatterOut]:
    record_read(ledger, principal, "matters")
    return [_matter_out(m) for m in lh.matters(ledger)]


@router.post("/matters/{matter_id}/close")
def close_matter(
    matter_id: UUID, body: MatterCloseIn, principal: RiskManager, ledger: LedgerDep
) -> MatterOut:
    """Close a matter whose holds are all released (409 otherwise)."""
    with principal.acting():
        matter = lh.close_matter(
            ledger, matter_id, reason=body.reason, at=now(), by=principal.user_id
        )
    return _matter_out(matter)


# -- holds --------------------------------------------------------------------------------------


@router.post("/matters/{matter_id}/holds", status_code=status.HTTP_201_CREATED)
def place_hold(matter_id: UUID, body: HoldIn, principal: RiskManager, ledger: LedgerDep) -> HoldOut:
    """Place a hold on an open matter. With ``notice``, its first notice is issued and goes out
    with the server's next sending round (every ``CHARTLEDGER_NOTICE_EVERY_SECONDS``) or
    ``POST /holds/remind``; a silent hold takes none and sends nothing."""
    return _hold_out(placed(ledger, principal, matter_id, body))


def placed(ledger: Ledger, principal: Principal, matter_id: UUID, body: HoldIn) -> lh.Hold:
    """The hold ``body`` describes, placed on the matter by ``principal`` (the API's route and
    the console's form alike)."""
    with principal.acting():
        return lh.place_hold(
            ledger,
            matter_id=matter_id,
            name=body.name,
            scope=scope_of(body.scope),
            at=now(),
            by=principal.user_id,
            silent=body.silent,
            reminder_days=body.reminder_days,
            escalation_days=body.escalation_days,
            notice=body.notice,
        )


@router.get("/holds")
def list_holds(
    principal: RiskManager,
    ledger: LedgerDep,
    matter_id: UUID | None = None,
    active: bool | None = None,
) -> list[HoldOut]:
    record_read(ledger, principal, "holds")
    found = lh.all_holds(ledger, matter_id)
    if active is not None:
        found = [h for h in found if h.active == active]
    return [_hold_out(h) for h in found]


def custodian_holds(ledger: Ledger, user_id: UUID) -> list[CustodianHoldOut]:
    """The active, noticed holds ``user_id`` is a custodian of: each one's current notice, and
    whether they acknowledged it. Silent holds are never shown (the console shows these too)."""
    found = []
    for hold in lh.all_holds(ledger):
        version = hold.current_version
        if not hold.active or hold.silent or version is None:
            continue
        if user_id not in hold.scope.custodians:
            continue
        mine = next(s for s in custodian_status(hold) if s.custodian_id == user_id)
        matter = lh.get_matter(ledger, hold.matter_id)
        found.append(
            CustodianHoldOut(
                hold_id=hold.id,
                matter_number=matter.number,
                matter_name=matter.name,
                name=hold.name,
                version=version,
                notice=hold.notices[-1].text,
                notified_at=mine.notified_at,
                acknowledged_at=mine.acknowledged_at,
            )
        )
    return found


@router.get("/holds/mine")
def my_holds(principal: CurrentUser, ledger: LedgerDep) -> list[CustodianHoldOut]:
    """The active, noticed holds the caller is a custodian of (any role): each one's current
    notice, and whether the caller acknowledged it. Silent holds are never shown."""
    return custodian_holds(ledger, principal.user_id)


@router.post("/holds/remind", responses=problems(502))
def remind(principal: RiskManager, ledger: LedgerDep) -> list[SentOut]:
    """Send every notice, reminder and escalation due now (SMTP when configured, otherwise
    files in ``$CHARTLEDGER_HOME/outbox``); each one sent is recorded on its hold."""
    with principal.acting():
        sent = send_due_alone(ledger, outbox_from_env(ledger.config.home), at=now())
    return [
        SentOut(due=_due_out(s.due), where="smtp" if s.where == "smtp" else "outbox") for s in sent
    ]


@router.get("/holds/{hold_id}")
def get_hold(hold_id: UUID, principal: RiskManager, ledger: LedgerDep) -> HoldOut:
    record_read(ledger, principal, "hold", hold_id=str(hold_id))
    return _hold_out(lh.get_hold(ledger, hold_id))


@router.put("/holds/{hold_id}/scope")
def change_scope(
    hold_id: UUID, body: ScopeChangeIn, principal: RiskManager, ledger: LedgerDep
) -> HoldOut:
    """Replace an active hold's scope (widen or narrow it); the report keeps every scope."""
    with principal.acting():
        hold = lh.change_scope(
            ledger,
            hold_id,
            scope=scope_of(body.scope),
            reason=body.reason,
            at=now(),
            by=principal.user_id,
        )
    return _hold_out(hold)


def check_releaser(ledger: Ledger, principal: Principal, route: str) -> None:
    """Refuse (and record) a caller who may release no hold at all: neither a risk manager nor
    an owner. Which of those may release which hold is legal_hold/hold_releases.py's rule."""
    if not any(r in principal.roles for r in RELEASER_ROLES):
        roles = tuple(RELEASER_ROLES)
        refuse_role(ledger, principal, route, roles, None, now())  # recorded, as api/roles.py
        raise Forbidden("this needs the role risk_manager or owner")


@router.post("/holds/{hold_id}/release")
def release(hold_id: UUID, body: ReleaseIn, principal: CurrentUser, ledger: LedgerDep) -> HoldOut:
    """Release the whole hold, or only the patients and custodians named, with a reason: by the
    risk manager who placed it, or by an owner. Another risk manager is refused (403
    ``two-person-rule``, recorded): they ask an owner (legal_hold/hold_releases.py)."""
    return _hold_out(released(ledger, principal, hold_id, body, "POST /holds/{hold_id}/release"))


def released(
    ledger: Ledger, principal: Principal, hold_id: UUID, body: ReleaseIn, route: str
) -> lh.Hold:
    """Release ``body``'s part of the hold as ``principal`` (the route and the console's form
    both call this): the placer or an owner; anyone else is refused and the refusal recorded
    under ``route``."""
    check_releaser(ledger, principal, route)
    with principal.acting():
        return release_hold(
            ledger,
            hold_id,
            by=principal.user_id,
            roles=principal.roles,
            reason=body.reason,
            at=now(),
            patients=body.patients,
            custodians=body.custodians,
        )


@router.post("/holds/{hold_id}/notices", status_code=status.HTTP_201_CREATED)
def issue_notice(
    hold_id: UUID, body: NoticeIn, principal: RiskManager, ledger: LedgerDep
) -> HoldOut:
    """Issue or re-issue the hold's notice: every custodian must acknowledge the new version;
    earlier versions and their acknowledgements are kept."""
    with principal.acting():
        lh.issue_notice(ledger, hold_id, text=body.text, at=now(), by=principal.user_id)
    return _hold_out(lh.get_hold(ledger, hold_id))


@router.post("/holds/{hold_id}/acknowledgements", status_code=status.HTTP_201_CREATED)
def acknowledge(
    hold_id: UUID, body: AcknowledgeIn, principal: CurrentUser, ledger: LedgerDep
) -> AcknowledgementOut:
    """The caller, a custodian of the hold, acknowledges its current notice version (any role;
    nobody acknowledges for someone else)."""
    at = now()
    with principal.acting():
        lh.acknowledge(ledger, hold_id, custodian_id=principal.user_id, version=body.version, at=at)
    return AcknowledgementOut(
        hold_id=hold_id, custodian_id=principal.user_id, version=body.version, acknowledged_at=at
    )


@router.get("/holds/{hold_id}/report")
def hold_report(hold_id: UUID, principal: RiskManager, ledger: LedgerDep) -> HoldReportOut:
    """The hold's scope and its changes over time, who was sent what when, who acknowledged
    which version when, what is outstanding and what is due now; each custodian's delivery
    state (acknowledged, failing, sent, due, none), failing deliveries from the server's last
    sending round."""
    record_read(ledger, principal, "hold report", hold_id=str(hold_id))
    seen = report(lh.get_hold(ledger, hold_id), at=now())
    states = {
        d.custodian_id: d
        for d in delivery_states(
            seen.hold_id,
            seen.custodians,
            seen.due,
            failing(ledger),
            sends=seen.active and not seen.silent,
        )
    }
    return HoldReportOut(
        hold_id=seen.hold_id,
        matter_id=seen.matter_id,
        name=seen.name,
        silent=seen.silent,
        active=seen.active,
        placed_at=seen.placed_at,
        released_at=seen.released_at,
        release_reason=seen.release_reason,
        scope_history=[
            ScopeChangeOut(
                at=c["at"],
                by=c["by"],
                change=c["change"],
                reason=c["reason"],
                scope=_scope_out(c["scope"]),
            )
            for c in seen.scope_history
        ],
        notices=[NoticeVersionOut(**n) for n in seen.notices],
        deliveries=[DeliveryOut(**d) for d in seen.deliveries],
        acknowledgements=[AckRowOut(**a) for a in seen.acknowledgements],
        custodians=[
            CustodianStatusOut(
                custodian_id=c.custodian_id,
                version=c.version,
                notified_at=c.notified_at,
                acknowledged_at=c.acknowledged_at,
                reminders=c.reminders,
                escalated_at=c.escalated_at,
                outstanding=c.outstanding,
                delivery=states[c.custodian_id].state,
                failing_since=states[c.custodian_id].failing_since,
                tries=states[c.custodian_id].tries,
                failure=states[c.custodian_id].failure,
            )
            for c in seen.custodians
        ],
        outstanding=seen.outstanding,
        due=[_due_out(d) for d in seen.due],
    )


# -- retention ----------------------------------------------------------------------------------
# Policies are adopted by owners; retention runs and disposal name an adopted policy. Disposal
# takes two people (legal_hold/disposal_approvals.py): a proposal, then a second person's
# approval, which disposes of the record.


def _actor(ledger: Ledger, principal: Principal) -> Actor:
    session = load(ledger, principal.session_id, Session, hot=True)
    return Actor(principal.user_id, tuple(principal.roles), "totp" in session.method)


def _adopted_out(policy: Policy, by: UUID, at: datetime) -> AdoptedPolicyOut:
    assert policy.version is not None
    return AdoptedPolicyOut(
        name=policy.name,
        version=policy.version,
        majority_age=policy.majority_age,
        rules={
            c: AdoptedRuleOut(adult_years=r.adult_years, minor_years=r.minor_years)
            for c, r in sorted(policy.rules.items())
        },
        adopted_by=by,
        adopted_at=at,
    )


def _named(body: PolicyRefIn) -> tuple[str, int]:
    """The adopted policy a request names; a policy's own rules in it are refused."""
    given = body.model_dump(exclude_none=True)
    carried = sorted(set(given) - {"policy", "version"})
    if carried:
        raise PerCallPolicy(
            f"a policy's rules are not accepted with the request ({', '.join(carried)}): name a "
            "policy the practice adopted (policy and version; an owner adopts one at "
            "POST /retention/policies)"
        )
    if body.policy is None or body.version is None:
        raise InvalidHoldEntry("name an adopted policy: policy and version")
    return body.policy, body.version


def _proposal_out(p: DisposalProposal, at: datetime) -> ProposalOut:
    return ProposalOut(
        proposal_id=p.id,
        patient_id=p.patient_id,
        policy=p.policy_name,
        version=p.policy_version,
        proposed_by=p.proposed_by,
        proposed_at=p.proposed_at,
        expires_at=p.expires_at,
        state=p.state(at),  # type: ignore[arg-type]
        approved_by=p.approved_by,
        approved_at=p.approved_at,
        disposal_id=p.disposal_id,
    )


@router.post("/retention/policies", status_code=status.HTTP_201_CREATED)
def adopt_policy(body: PolicyIn, principal: CurrentUser, ledger: LedgerDep) -> AdoptedPolicyOut:
    """An owner adopts a policy: the next version of its name. Refused (and recorded) for
    anyone else (403) and for a policy keeping any record less than the practice's floor (409
    ``below-retention-floor``)."""
    return adopt(ledger, principal, body)


def adopt(ledger: Ledger, principal: Principal, body: PolicyIn) -> AdoptedPolicyOut:
    """``principal`` adopts the policy ``body`` describes, or the refusal is recorded and raised
    (``DisposalNotPermitted`` for anyone but an owner, ``BelowFloor``)."""
    at = now()
    with principal.acting():
        try:
            if "owner" not in principal.roles:
                raise DisposalNotPermitted("only an owner adopts a retention policy")
            adopted = policies.adopt_policy(ledger, _policy(body), by=principal.user_id, at=at)
        except (DisposalNotPermitted, BelowFloor) as refused:
            ledger.save(
                AdoptionRefusal.record(
                    policy_name=body.name, by=principal.user_id, reason=str(refused), at=at
                )
            )
            raise
    return _adopted_out(adopted, principal.user_id, at)


@router.get("/retention/policies")
def list_policies(principal: Disposer, ledger: LedgerDep) -> PoliciesOut:
    """The practice's retention floor (set at init) and every adopted policy, oldest first."""
    book = policies.load_book(ledger, at=now())
    return PoliciesOut(
        floor=FloorOut(**book.floor.to_payload()),
        policies=[_adopted_out(a.policy, a.adopted_by, a.adopted_at) for a in book.adoptions],
    )


@router.post("/retention/runs")
def retention_run(body: PolicyRefIn, principal: Disposer, ledger: LedgerDep) -> list[CandidateOut]:
    """Each patient's retention under an adopted policy at this moment: eligible (the policy
    allows disposal), held by (active holds covering them: they win) and disposable (both)."""
    name, version = _named(body)
    at = now()
    policy = policies.adopted_policy(ledger, name, version, at=at)
    record_read(ledger, principal, "retention run", policy=policy.label)
    return [
        CandidateOut(
            patient_id=c.patient_id,
            last_encounter=c.last_encounter,
            retain_until=c.retain_until,
            eligible=c.eligible,
            held_by=list(c.held_by),
            disposable=c.disposable,
        )
        for c in disposal_run(ledger, policy, at=at)
    ]


@router.post("/patients/{patient_id}/disposal", status_code=status.HTTP_201_CREATED)
def propose_disposal(
    patient_id: UUID, body: PolicyRefIn, principal: CurrentUser, services: ServicesDep
) -> ProposalOut:
    """Propose disposing of the patient's record under an adopted policy; nothing is destroyed
    until a second person approves (``POST /disposals/{id}/approve``). A risk manager or an
    owner, signed in with a TOTP code. Refused, and the refusal recorded: a policy's rules in
    the body (422 ``per-call-policy``), an unadopted policy (409 ``policy-not-adopted``), a
    patient under a hold (409 ``under-legal-hold``) or not yet eligible (409 ``not-eligible``),
    the wrong role or session (403 ``two-person-rule``)."""
    return propose(services, principal, patient_id, body)


def propose(
    services: Services, principal: Principal, patient_id: UUID, body: PolicyRefIn
) -> ProposalOut:
    """``principal`` proposes disposing of the patient's record under the adopted policy
    ``body`` names; every refusal is recorded before it is raised."""
    ledger, at = services.ledger, now()
    with principal.acting():
        actor = _actor(ledger, principal)
        try:
            name, version = _named(body)
        except InvalidHoldEntry as refused:
            raise approvals.refuse_proposal(
                ledger,
                patient_id=patient_id,
                policy_name=body.policy or body.name,
                policy_version=body.version,
                actor=actor,
                refused=refused,
                at=at,
            ) from None
        proposal = approvals.propose_disposal(
            ledger,
            patient_id,
            policy_name=name,
            policy_version=version,
            actor=actor,
            at=at,
            lifetime=services.settings.disposal_approval_lifetime,
        )
    return _proposal_out(proposal, at)


@router.get("/disposals")
def list_proposals(principal: Disposer, ledger: LedgerDep) -> list[ProposalOut]:
    """Every disposal proposal, oldest first, with its state now."""
    record_read(ledger, principal, "disposal proposals")
    at = now()
    return [_proposal_out(p, at) for p in approvals.proposals(ledger)]


@router.post("/disposals/{proposal_id}/approve", status_code=status.HTTP_201_CREATED)
def approve_disposal(
    proposal_id: UUID, principal: CurrentUser, ledger: LedgerDep, runner: RunnerDep
) -> DisposalOut:
    """Approve a pending proposal: the record is disposed of now (its data key destroyed), then
    the views are rebuilt. Someone other than the proposer, a risk manager or an owner in a TOTP
    session, one of the two an owner (403 ``two-person-rule``); before it expires (409
    ``proposal-state``); holds and eligibility are checked again (409 ``under-legal-hold``,
    ``not-eligible``). Every refusal is recorded."""
    return approve(ledger, runner, principal, proposal_id)


def approve(ledger: Ledger, runner: Runner, principal: Principal, proposal_id: UUID) -> DisposalOut:
    """``principal`` approves the proposal: the record is disposed of, then the views are
    rebuilt (they held what the destroyed key sealed)."""
    with principal.acting():
        disposal = approvals.approve_disposal(
            ledger, proposal_id, actor=_actor(ledger, principal), at=now()
        )
    runner.rebuild()
    return _disposal_out(disposal)


@router.get("/patients/{patient_id}/disposal")
def disposed_record(patient_id: UUID, principal: Disposer, ledger: LedgerDep) -> DisposedRecordOut:
    """How the patient's record was disposed of, and each disposed event's metadata, read as
    "disposed under policy P on date D by user U" (404 if it never was)."""
    record_read(ledger, principal, "disposed record", patient_id=str(patient_id))
    mine = [d for d in disposals(ledger) if d.patient_id == patient_id]
    if not mine:
        raise NotFound(f"no disposal of patient {patient_id}")
    return DisposedRecordOut(
        patient_id=patient_id,
        disposals=[_disposal_out(d) for d in mine],
        events=[
            DisposedEventOut(
                position=e.position,
                stream=e.stream,
                version=e.version,
                type=e.type,
                recorded=e.recorded,
                actor=e.actor,
                disposal=e.disposal,
            )
            for e in disposed_events_of(ledger, patient_id)
        ],
    )
