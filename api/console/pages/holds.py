"""Legal holds in the console, for risk managers (the API's rules and refusals,
``api/routers/holds.py``): holds placed on a matter on patients found by MRN or name and on
custodians picked by username; a hold's scope changed, its notice re-issued, released whole or
in part; the outstanding acknowledgements and the hold report.

Every page that names patients records the read of their names first (``api/console/legal.py``);
every list of holds is recorded as the API records it (``record_read``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from api.auth import now
from api.console.legal import (
    PatientName,
    Refused,
    RiskManagerOnly,
    RiskManagerPosting,
    find_patients,
    invalid,
    patient_label,
    patient_names,
    people,
    person_label,
)
from api.console.web import (
    PREFIX,
    ConsoleRoute,
    CsrfChecked,
    Problem,
    redirect,
    render,
    services_of,
)
from api.hold_schemas import HoldIn, NoticeIn, ReleaseIn, ScopeIn
from api.routers.holds import placed, record_read, released, scope_of
from legal_hold import holds as lh
from legal_hold.custodians import report, status
from legal_hold.holds import CATEGORIES, Hold

router = APIRouter(route_class=ConsoleRoute)
NAV: list[Any] = []  # reached from a matter's page (matters.py) and the matters list
Text = Annotated[str, Form()]
Texts = Annotated[list[str], Form()]


def _ids(values: list[str], what: str) -> list[UUID]:
    try:
        return [UUID(v) for v in values if v]
    except ValueError:
        raise ValueError(f"{what}: not a choice of this page") from None


def _day(value: str) -> date | None:
    return date.fromisoformat(value) if value else None


def _scope_in(
    patients: list[str],
    custodians: list[str],
    all_patients: str,
    start: str,
    end: str,
    categories: list[str],
) -> ScopeIn:
    """The scope a form describes: checked boxes and dates (validated as the API's body)."""
    return ScopeIn.model_validate(
        {
            "patients": patients,
            "custodians": custodians,
            "all_patients": all_patients == "yes",
            "start": start or None,
            "end": end or None,
            "categories": categories,
        }
    )


# -- placing a hold and changing its scope: one form, with a patient search -------------------


def _scope_form(
    request: Request,
    principal: Any,
    *,
    template: str,
    title: str,
    chosen: list[UUID],
    custodians: list[UUID],
    query: str,
    fields: dict[str, Any],
    problem: Problem | None = None,
    code: int = 200,
    **context: Any,
) -> Response:
    """The scope form: the patients already chosen (ticked), those the search found, and every
    active user as a custodian to tick; what was typed is kept."""
    services = services_of(request)
    ledger, runner = services.ledger, services.runner
    names = patient_names(ledger, runner, principal, chosen, "hold scope form")
    found: list[PatientName] = []
    if query.strip():
        found = [p for p in find_patients(ledger, runner, principal, query.strip())]
    shown = [names[p] for p in chosen if p in names]
    shown += [p for p in found if p.patient_id not in set(chosen)]
    staff = [p for p in people(ledger).values() if p.active]
    return render(
        request,
        template,
        status_code=code,
        title=title,
        patients=shown,
        chosen=set(chosen),
        missing=[p for p in chosen if p not in names],
        searched=bool(query.strip()),
        found=len(found),
        query=query,
        staff=staff,
        custodians=set(custodians),
        categories=CATEGORIES,
        fields=fields,
        problem=problem,
        **context,
    )


@router.get("/matters/{matter_id}/holds/new")
def new_hold(request: Request, matter_id: UUID, principal: RiskManagerOnly) -> Response:
    matter = lh.get_matter(services_of(request).ledger, matter_id)
    return _scope_form(
        request,
        principal,
        template="holds/place.html",
        title=f"Place a hold on matter {matter.number}",
        chosen=[],
        custodians=[],
        query="",
        fields={"reminder_days": 7, "escalation_days": 14},
        matter=matter,
    )


@router.post("/matters/{matter_id}/holds")
def place_hold(
    request: Request,
    matter_id: UUID,
    principal: RiskManagerPosting,
    action: Text = "place",
    query: Text = "",
    name: Text = "",
    notice: Text = "",
    silent: Text = "",
    reminder_days: Text = "7",
    escalation_days: Text = "14",
    patients: Texts = [],  # noqa: B006  (FastAPI copies a Form default)
    custodians: Texts = [],  # noqa: B006
    all_patients: Text = "",
    start: Text = "",
    end: Text = "",
    categories: Texts = [],  # noqa: B006
) -> Response:
    """Find patients (the form comes back with them to tick), or place the hold."""
    ledger = services_of(request).ledger
    matter = lh.get_matter(ledger, matter_id)
    fields = {
        "name": name,
        "notice": notice,
        "silent": silent == "yes",
        "reminder_days": reminder_days,
        "escalation_days": escalation_days,
        "all_patients": all_patients == "yes",
        "start": start,
        "end": end,
        "categories": set(categories),
    }
    problem = None
    try:
        chosen, picked = _ids(patients, "patients"), _ids(custodians, "custodians")
    except ValueError as error:
        chosen, picked, problem = [], [], Problem(422, "Some fields are invalid", str(error))
    if action == "place" and problem is None:
        try:
            body = HoldIn(
                name=name,
                scope=_scope_in(patients, custodians, all_patients, start, end, categories),
                silent=silent == "yes",
                reminder_days=reminder_days,  # type: ignore[arg-type]  # validated here
                escalation_days=escalation_days,  # type: ignore[arg-type]
                notice=None if silent == "yes" else (notice or None),
            )
            hold = placed(ledger, principal, matter_id, body)
            return redirect(request, f"{PREFIX}/holds/{hold.id}", "Hold placed.")
        except Refused as error:
            problem = invalid(error)
    return _scope_form(
        request,
        principal,
        template="holds/place.html",
        title=f"Place a hold on matter {matter.number}",
        chosen=chosen,
        custodians=picked,
        query=query if action == "search" else "",
        fields=fields,
        problem=problem,
        code=problem.status if problem else 200,
        matter=matter,
    )


# -- a hold --------------------------------------------------------------------------------


def _hold_context(request: Request, principal: Any, hold: Hold, what: str) -> dict[str, Any]:
    services = services_of(request)
    ledger = services.ledger
    staff = people(ledger)
    named = set(hold.scope.patients)
    for change in hold.history:
        named.update(change.scope.patients)
    names = patient_names(ledger, services.runner, principal, named, what)
    return {
        "hold": hold,
        "matter": lh.get_matter(ledger, hold.matter_id),
        "staff": staff,
        "who": lambda user_id: person_label(staff, user_id),
        "patient": lambda patient_id: patient_label(names, patient_id),
    }


def _hold_page(
    request: Request,
    principal: Any,
    hold_id: UUID,
    problem: Problem | None = None,
    code: int = 200,
) -> Response:
    ledger = services_of(request).ledger
    record_read(ledger, principal, "hold", hold_id=str(hold_id))
    hold = lh.get_hold(ledger, hold_id)
    context = _hold_context(request, principal, hold, "hold")
    return render(
        request,
        "holds/hold.html",
        status_code=code,
        title=f"Hold “{hold.name}”",
        custodians=status(hold),
        problem=problem,
        **context,
    )


@router.get("/holds")
def holds(request: Request, principal: RiskManagerOnly) -> Response:
    """Every hold, the active first, with the custodians yet to acknowledge its notice."""
    ledger = services_of(request).ledger
    record_read(ledger, principal, "holds")
    found = lh.all_holds(ledger)
    matters = {m.id: m for m in lh.matters(ledger)}
    staff = people(ledger)
    waiting = {
        h.id: [person_label(staff, s.custodian_id) for s in status(h) if s.outstanding]
        for h in found
        if h.active
    }
    return render(
        request,
        "holds/holds.html",
        title="Holds and outstanding acknowledgements",
        holds=sorted(found, key=lambda h: (not h.active, h.placed_at)),
        matters=matters,
        waiting=waiting,
    )


@router.get("/holds/{hold_id}")
def hold(request: Request, hold_id: UUID, principal: RiskManagerOnly) -> Response:
    return _hold_page(request, principal, hold_id)


@router.post("/holds/{hold_id}/notices")
def issue_notice(
    request: Request, hold_id: UUID, principal: RiskManagerPosting, text: Text = ""
) -> Response:
    ledger = services_of(request).ledger
    try:
        body = NoticeIn(text=text)
        with principal.acting():
            version = lh.issue_notice(
                ledger, hold_id, text=body.text, at=now(), by=principal.user_id
            )
    except Refused as error:
        return _hold_page(request, principal, hold_id, invalid(error), invalid(error).status)
    message = f"Notice version {version} issued: every custodian is to acknowledge it."
    return redirect(request, f"{PREFIX}/holds/{hold_id}", message)


@router.post("/holds/{hold_id}/release")
def release(
    request: Request,
    hold_id: UUID,
    principal: CsrfChecked,
    reason: Text = "",
    patients: Texts = [],  # noqa: B006
    custodians: Texts = [],  # noqa: B006
) -> Response:
    """Release the whole hold (nothing ticked) or the patients and custodians ticked: its
    placer or an owner (``legal_hold/hold_releases.py``); another risk manager is refused."""
    ledger = services_of(request).ledger
    route = "POST /console/holds/{hold_id}/release"
    try:
        body = ReleaseIn(reason=reason, patients=patients, custodians=custodians)  # type: ignore[arg-type]
        hold = released(ledger, principal, hold_id, body, route)
    except Refused as error:
        if "risk_manager" not in principal.roles:
            raise  # an owner's refusal: the refusal page (the hold page is risk managers')
        return _hold_page(request, principal, hold_id, invalid(error), invalid(error).status)
    message = "Hold released." if not hold.active else "Released from the hold's scope."
    if "risk_manager" not in principal.roles:
        return redirect(request, f"{PREFIX}/", message)
    return redirect(request, f"{PREFIX}/holds/{hold_id}", message)


@router.get("/holds/{hold_id}/scope")
def scope_form(request: Request, hold_id: UUID, principal: RiskManagerOnly) -> Response:
    ledger = services_of(request).ledger
    record_read(ledger, principal, "hold", hold_id=str(hold_id))
    hold = lh.get_hold(ledger, hold_id)
    scope = hold.scope
    return _scope_form(
        request,
        principal,
        template="holds/scope.html",
        title=f"Change the scope of “{hold.name}”",
        chosen=list(scope.patients),
        custodians=list(scope.custodians),
        query="",
        fields={
            "all_patients": scope.all_patients,
            "start": scope.start.isoformat() if scope.start else "",
            "end": scope.end.isoformat() if scope.end else "",
            "categories": set(scope.categories),
            "reason": "",
        },
        hold=hold,
    )


@router.post("/holds/{hold_id}/scope")
def change_scope(
    request: Request,
    hold_id: UUID,
    principal: RiskManagerPosting,
    action: Text = "change",
    query: Text = "",
    reason: Text = "",
    patients: Texts = [],  # noqa: B006
    custodians: Texts = [],  # noqa: B006
    all_patients: Text = "",
    start: Text = "",
    end: Text = "",
    categories: Texts = [],  # noqa: B006
) -> Response:
    ledger = services_of(request).ledger
    hold = lh.get_hold(ledger, hold_id)
    fields = {
        "reason": reason,
        "all_patients": all_patients == "yes",
        "start": start,
        "end": end,
        "categories": set(categories),
    }
    problem = None
    try:
        chosen, picked = _ids(patients, "patients"), _ids(custodians, "custodians")
    except ValueError as error:
        chosen, picked, problem = [], [], Problem(422, "Some fields are invalid", str(error))
    if action == "change" and problem is None and not reason.strip():
        problem = Problem(422, "Some fields are missing or invalid", "reason")
    if action == "change" and problem is None:
        try:
            scope = _scope_in(patients, custodians, all_patients, start, end, categories)
            with principal.acting():
                lh.change_scope(
                    ledger,
                    hold_id,
                    scope=scope_of(scope),
                    reason=reason,
                    at=now(),
                    by=principal.user_id,
                )
            return redirect(request, f"{PREFIX}/holds/{hold_id}", "Scope changed.")
        except Refused as error:
            problem = invalid(error)
    return _scope_form(
        request,
        principal,
        template="holds/scope.html",
        title=f"Change the scope of “{hold.name}”",
        chosen=chosen,
        custodians=picked,
        query=query if action == "search" else "",
        fields=fields,
        problem=problem,
        code=problem.status if problem else 200,
        hold=hold,
    )


@router.get("/holds/{hold_id}/report")
def hold_report(request: Request, hold_id: UUID, principal: RiskManagerOnly) -> Response:
    """The hold report: its scope over time, who was sent what when, who acknowledged which
    version when, what is outstanding and what is due now."""
    ledger = services_of(request).ledger
    record_read(ledger, principal, "hold report", hold_id=str(hold_id))
    hold = lh.get_hold(ledger, hold_id)
    context = _hold_context(request, principal, hold, "hold report")
    return render(
        request,
        "holds/report.html",
        title=f"Hold report: “{hold.name}”",
        report=report(hold, at=now()),
        **context,
    )
