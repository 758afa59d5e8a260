"""Retention and disposal in the console: the practice's floor and adopted policies (an owner
adopts one), a retention run under an adopted policy, and disposal by two people: a proposal,
then a second person's approval, one of the two an owner (``legal_hold/disposal_approvals.py``).

The rules and the refusals' records are the API's (``api/routers/holds.py``: ``adopt``,
``propose``, ``approve``); a record under a legal hold is refused here in words naming the holds.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.auth import Principal, now
from api.console.legal import (
    Refused,
    invalid,
    patient_label,
    patient_names,
    people,
    person_label,
    refusal_words,
)
from api.console.web import (
    PREFIX,
    ConsoleRoute,
    CsrfChecked,
    NavItem,
    Problem,
    redirect,
    render,
    require_console_role,
    services_of,
)
from api.hold_schemas import PolicyIn, PolicyRefIn
from api.routers.holds import adopt, approve, propose, record_read
from legal_hold import disposal_approvals as approvals
from legal_hold import holds as lh
from legal_hold import policies
from legal_hold.retention import disposal_run

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("Retention and disposal", PREFIX + "/retention", ("risk_manager",))]
# Risk managers and owners, as the API's retention routes (``Disposer``).
DisposerPage = Annotated[Principal, require_console_role("risk_manager")]
Text = Annotated[str, Form()]


def _retention_page(
    request: Request, principal: Principal, problem: Problem | None = None, code: int = 200
) -> Response:
    services = services_of(request)
    ledger = services.ledger
    book = policies.load_book(ledger, at=now())
    staff = people(ledger)
    record_read(ledger, principal, "disposal proposals")
    at = now()
    proposals = approvals.proposals(ledger)
    pending = [p.patient_id for p in proposals if p.state(at) == "pending"]
    names = patient_names(ledger, services.runner, principal, pending, "disposal proposals")
    return render(
        request,
        "disposal/retention.html",
        status_code=code,
        title="Retention and disposal",
        floor=book.floor,
        adoptions=list(book.adoptions),
        proposals=list(reversed(proposals)),
        state=lambda p: p.state(at),
        who=lambda user_id: person_label(staff, user_id),
        patient=lambda patient_id: patient_label(names, patient_id),
        owner="owner" in principal.roles,
        me=principal.user_id,
        problem=problem,
    )


@router.get("/retention")
def retention(request: Request, principal: DisposerPage) -> Response:
    return _retention_page(request, principal)


@router.post("/retention/policies")
def adopt_policy(
    request: Request,
    principal: CsrfChecked,
    name: Text = "",
    adult_years: Text = "",
    minor_years: Text = "",
    majority_age: Text = "18",
) -> Response:
    """An owner adopts a policy; anyone else, or a policy below the floor, is refused (and the
    refusal recorded) on the page."""
    try:
        body = PolicyIn.model_validate(
            {
                "name": name,
                "adult_years": adult_years,
                "minor_years": minor_years,
                "majority_age": majority_age,
            }
        )
        adopted = adopt(services_of(request).ledger, principal, body)
    except Refused as error:
        if "risk_manager" not in principal.roles and "owner" not in principal.roles:
            raise  # no page of this family is theirs: the refusal page
        return _retention_page(request, principal, invalid(error), invalid(error).status)
    message = f"Policy {adopted.name} version {adopted.version} adopted."
    return redirect(request, f"{PREFIX}/retention", message)


@router.get("/retention/run")
def retention_run(
    request: Request, principal: DisposerPage, policy: str = "", version: int = 0
) -> Response:
    """Each patient's retention under the adopted policy now: those the policy allows disposing
    of are named (their names' read recorded), with the holds that keep them."""
    services = services_of(request)
    ledger = services.ledger
    at = now()
    chosen = policies.adopted_policy(ledger, policy, version, at=at)
    record_read(ledger, principal, "retention run", policy=chosen.label)
    found = disposal_run(ledger, chosen, at=at)
    eligible = [c for c in found if c.eligible]
    names = patient_names(
        ledger, services.runner, principal, [c.patient_id for c in eligible], "retention run"
    )
    holds = {h.id: h for h in lh.all_holds(ledger)}
    matters = {m.id: m for m in lh.matters(ledger)}
    return render(
        request,
        "disposal/run.html",
        title=f"Retention under {chosen.label}",
        policy=chosen,
        candidates=sorted(eligible, key=lambda c: patient_label(names, c.patient_id)),
        waiting=len(found) - len(eligible),
        patient=lambda patient_id: patient_label(names, patient_id),
        hold_name=lambda hold_id: (
            f"“{holds[hold_id].name}” (matter {matters[holds[hold_id].matter_id].number})"
        ),
    )


@router.post("/disposals")
def propose_disposal(
    request: Request,
    principal: CsrfChecked,
    patient_id: Annotated[UUID, Form()],
    policy: Text = "",
    version: Text = "",
) -> Response:
    """Propose disposing of a record; a second person approves it. Refused (and recorded): a
    record under a legal hold, one not yet eligible, an unadopted policy, the wrong role."""
    services = services_of(request)
    ledger = services.ledger
    try:
        body = PolicyRefIn.model_validate({"policy": policy, "version": version})
        propose(services, principal, patient_id, body)
    except Refused as error:
        if "risk_manager" not in principal.roles and "owner" not in principal.roles:
            raise
        names = patient_names(ledger, services.runner, principal, [patient_id], "disposal refused")
        problem = refusal_words(ledger, error, patient_label(names, patient_id))
        return _retention_page(request, principal, problem, problem.status)
    message = "Disposal proposed: it waits for a second person's approval (one of you an owner)."
    return redirect(request, f"{PREFIX}/retention", message)


@router.post("/disposals/{proposal_id}/approve")
def approve_disposal(request: Request, proposal_id: UUID, principal: CsrfChecked) -> Response:
    """Approve a pending proposal: the record is disposed of now (its data key destroyed)."""
    services = services_of(request)
    ledger = services.ledger
    try:
        disposal = approve(ledger, services.runner, principal, proposal_id)
    except Refused as error:
        if "risk_manager" not in principal.roles and "owner" not in principal.roles:
            raise
        problem = refusal_words(ledger, error)
        return _retention_page(request, principal, problem, problem.status)
    by = person_label(people(ledger), disposal.disposed_by)
    description = disposal.description.replace(f"by user {disposal.disposed_by}", f"by {by}")
    message = f"Disposal approved: the record was {description}."
    return redirect(request, f"{PREFIX}/retention", message)
