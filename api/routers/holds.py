"""Legal holds and retention over HTTP (``legal_hold/``): matters, holds and their scope,
notices and acknowledgements, reminders, hold reports, retention runs and disposal.

Everything here is for the ``risk_manager`` role only (an owner without it is refused too: the
issue gives holds and disposal to risk managers), except a custodian's own notices and their
acknowledgement, which any signed-in custodian does for themself. Every change is a ledger event
acted by the caller's session; every read of holds or retention (they name patients by id) is
recorded first, as a query of category ``audit`` with purpose ``HLEGAL``.

Reads of a disposed record name the patient only in the read's detail, never as a subject: an
event about the patient would be sealed under a fresh key of the patient the disposal shredded.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import Depends, status

from api.auth import Principal, now
from api.deps import CurrentUser, LedgerDep, RunnerDep
from api.errors import Forbidden, NotFound
from api.hold_schemas import (
    AcknowledgeIn,
    AcknowledgementOut,
    AckRowOut,
    CandidateOut,
    CustodianHoldOut,
    CustodianStatusOut,
    DeliveryOut,
    DisposalOut,
    DisposedEventOut,
    DisposedRecordOut,
    DueOut,
    HoldIn,
    HoldOut,
    HoldReportOut,
    MatterCloseIn,
    MatterIn,
    MatterOut,
    NoticeIn,
    NoticeVersionOut,
    PolicyIn,
    ReleaseIn,
    ScopeChangeIn,
    ScopeChangeOut,
    ScopeIn,
    ScopeOut,
    SentOut,
)
from api.routing import Router
from domain.access import Access
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.custodians import Due, report
from legal_hold.custodians import status as custodian_status
from legal_hold.errors import InvalidHoldEntry
from legal_hold.holds import CATEGORIES, Hold, Scope
from legal_hold.matters import Matter
from legal_hold.notices import outbox_from_env, send_due
from legal_hold.retention import Disposal, Policy, Rule, disposal_run, disposals, dispose
from legal_hold.retention import disposed_events as disposed_events_of

router = Router(tags=["legal holds"])
ROLE = "risk_manager"


def require_risk_manager(principal: CurrentUser) -> Principal:
    if ROLE not in principal.roles:
        raise Forbidden(f"this needs the role {ROLE}")
    return principal


RiskManager = Annotated[Principal, Depends(require_risk_manager)]


def _record_read(ledger: Ledger, principal: Principal, what: str, **detail: str) -> None:
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


def _scope(body: ScopeIn) -> Scope:
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
        policy=d.policy_name,
        retain_until=d.retain_until,
        disposed_at=d.at,
        disposed_by=d.by,
        keys_destroyed=len(d.key_names),
        description=d.describe(),
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
    _record_read(ledger, principal, "matters")
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
    with the next ``POST /holds/remind``; a silent hold takes none and sends nothing."""
    with principal.acting():
        hold = lh.place_hold(
            ledger,
            matter_id=matter_id,
            name=body.name,
            scope=_scope(body.scope),
            at=now(),
            by=principal.user_id,
            silent=body.silent,
            reminder_days=body.reminder_days,
            escalation_days=body.escalation_days,
            notice=body.notice,
        )
    return _hold_out(hold)


@router.get("/holds")
def list_holds(
    principal: RiskManager,
    ledger: LedgerDep,
    matter_id: UUID | None = None,
    active: bool | None = None,
) -> list[HoldOut]:
    _record_read(ledger, principal, "holds")
    found = lh.all_holds(ledger, matter_id)
    if active is not None:
        found = [h for h in found if h.active == active]
    return [_hold_out(h) for h in found]


@router.get("/holds/mine")
def my_holds(principal: CurrentUser, ledger: LedgerDep) -> list[CustodianHoldOut]:
    """The active, noticed holds the caller is a custodian of (any role): each one's current
    notice, and whether the caller acknowledged it. Silent holds are never shown."""
    found = []
    for hold in lh.all_holds(ledger):
        version = hold.current_version
        if not hold.active or hold.silent or version is None:
            continue
        if principal.user_id not in hold.scope.custodians:
            continue
        mine = next(s for s in custodian_status(hold) if s.custodian_id == principal.user_id)
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


@router.post("/holds/remind")
def remind(principal: RiskManager, ledger: LedgerDep) -> list[SentOut]:
    """Send every notice, reminder and escalation due now (SMTP when configured, otherwise
    files in ``$CHARTLEDGER_HOME/outbox``); each one sent is recorded on its hold."""
    with principal.acting():
        sent = send_due(ledger, outbox_from_env(ledger.config.home), at=now())
    return [
        SentOut(due=_due_out(s.due), where="smtp" if s.where == "smtp" else "outbox") for s in sent
    ]


@router.get("/holds/{hold_id}")
def get_hold(hold_id: UUID, principal: RiskManager, ledger: LedgerDep) -> HoldOut:
    _record_read(ledger, principal, "hold", hold_id=str(hold_id))
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
            scope=_scope(body.scope),
            reason=body.reason,
            at=now(),
            by=principal.user_id,
        )
    return _hold_out(hold)


@router.post("/holds/{hold_id}/release")
def release(hold_id: UUID, body: ReleaseIn, principal: RiskManager, ledger: LedgerDep) -> HoldOut:
    """Release the whole hold, or only the patients and custodians named, with a reason."""
    with principal.acting():
        hold = lh.release_hold(
            ledger,
            hold_id,
            reason=body.reason,
            at=now(),
            by=principal.user_id,
            patients=body.patients,
            custodians=body.custodians,
        )
    return _hold_out(hold)


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
    which version when, what is outstanding and what is due now."""
    _record_read(ledger, principal, "hold report", hold_id=str(hold_id))
    seen = report(lh.get_hold(ledger, hold_id), at=now())
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
            )
            for c in seen.custodians
        ],
        outstanding=seen.outstanding,
        due=[_due_out(d) for d in seen.due],
    )


# -- retention ----------------------------------------------------------------------------------


@router.post("/retention/runs")
def retention_run(body: PolicyIn, principal: RiskManager, ledger: LedgerDep) -> list[CandidateOut]:
    """Each patient's retention under the policy at this moment: eligible (the policy allows
    disposal), held by (active holds covering them: they win) and disposable (both allow it)."""
    policy = _policy(body)
    _record_read(ledger, principal, "retention run", policy=policy.name)
    return [
        CandidateOut(
            patient_id=c.patient_id,
            last_encounter=c.last_encounter,
            retain_until=c.retain_until,
            eligible=c.eligible,
            held_by=list(c.held_by),
            disposable=c.disposable,
        )
        for c in disposal_run(ledger, policy, at=now())
    ]


@router.post("/patients/{patient_id}/disposal", status_code=status.HTTP_201_CREATED)
def dispose_patient(
    patient_id: UUID,
    body: PolicyIn,
    principal: RiskManager,
    ledger: LedgerDep,
    runner: RunnerDep,
) -> DisposalOut:
    """Dispose of the patient's record under the policy by destroying their data key, then
    rebuild the views. Refused (409 ``under-legal-hold``, and a ``Refused`` event in the ledger)
    while any active hold covers the patient; 409 ``not-eligible`` before the policy allows it."""
    policy = _policy(body)
    with principal.acting():
        disposal = dispose(ledger, patient_id, policy=policy, by=principal.user_id, at=now())
    runner.rebuild()
    return _disposal_out(disposal)


@router.get("/patients/{patient_id}/disposal")
def disposed_record(
    patient_id: UUID, principal: RiskManager, ledger: LedgerDep
) -> DisposedRecordOut:
    """How the patient's record was disposed of, and each disposed event's metadata, read as
    "disposed under policy P on date D by user U" (404 if it never was)."""
    _record_read(ledger, principal, "disposed record", patient_id=str(patient_id))
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
