"""Productions in the console, for risk managers: start one for a matter (it runs as a job, its
progress shown by the job's page), the production's page, its download (recorded as the API
records it) and the verifier's result on the finished bundle.

The verifier is the published one (``verify.verify_bundle``), run on demand on the bundle as it
lies in the practice home, its key history pinned to the practice's first signing key: what the
other side will run, and what they will see.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, Response

from api.console.legal import (
    RiskManagerOnly,
    RiskManagerPosting,
    invalid,
    patient_label,
    patient_names,
    people,
    person_label,
)
from api.console.pages.matters import matter_page
from api.console.web import PREFIX, ConsoleRoute, Problem, redirect, render, services_of
from api.errors import NotFound
from api.routers.holds import record_read
from api.routers.productions import (
    MEDIA_TYPE,
    bundle_copied,
    productions_home,
    start_production,
)
from domain.errors import ChartError
from legal_hold import holds as lh
from legal_hold.productions import Production
from verify import verify_bundle

router = APIRouter(route_class=ConsoleRoute)
NAV: list[Any] = []  # reached from a matter's page


def withheld(text: str) -> dict[int, str]:
    """The withhold box's lines, ``<position> <claim>`` each, as ``produce`` takes them."""
    claims: dict[int, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        position, _, claim = line.strip().partition(" ")
        if not position.isdigit() or not claim.strip():
            raise ValueError(
                f"withhold line {number}: give the event's position, a space, then the claim"
            )
        claims[int(position)] = claim.strip()
    return claims


@router.post("/matters/{matter_id}/productions")
def produce(
    request: Request,
    matter_id: UUID,
    principal: RiskManagerPosting,
    withhold: Annotated[str, Form()] = "",
) -> Response:
    """Start the matter's production as a job; a refusal known now is shown on the matter's
    page (no hold, nothing in scope, a claim on an event out of scope)."""
    services = services_of(request)
    try:
        claims = withheld(withhold)
    except ValueError as error:
        problem = Problem(422, "The withhold list is not understood", str(error))
        return matter_page(request, principal, matter_id, problem, 422)
    try:
        job = start_production(services.ledger, services.jobs, principal, matter_id, claims, None)
    except ChartError as error:  # a production's refusals are legal-hold errors
        problem = invalid(error)
        return matter_page(request, principal, matter_id, problem, problem.status)
    return redirect(request, f"{PREFIX}/jobs/{job.job_id}", "Production started.")


def _production(request: Request, principal: Any, production_id: UUID) -> dict[str, Any]:
    services = services_of(request)
    ledger = services.ledger
    record_read(ledger, principal, "production", production_id=str(production_id))
    produced = ledger.repository.get(production_id)
    if not isinstance(produced, Production):
        raise NotFound(f"no production {production_id}")
    subjects = produced.produced_subjects
    patients = [UUID(s.removeprefix("patient:")) for s in subjects if s.startswith("patient:")]
    users = [UUID(s.removeprefix("user:")) for s in subjects if s.startswith("user:")]
    names = patient_names(ledger, services.runner, principal, patients, "production")
    staff = people(ledger)
    return {
        "production": produced,
        "matter": lh.get_matter(ledger, produced.matter_id),
        "by": person_label(staff, produced.produced_by),
        "patients": [patient_label(names, p) for p in patients],
        "custodians": [person_label(staff, u) for u in users],
        "available": (productions_home(ledger) / produced.bundle_name).is_file(),
    }


@router.get("/productions/{production_id}")
def production(request: Request, production_id: UUID, principal: RiskManagerOnly) -> Response:
    context = _production(request, principal, production_id)
    return render(request, "productions/production.html", title="Production", **context)


@router.get("/productions/{production_id}/bundle")
def download(request: Request, production_id: UUID, principal: RiskManagerOnly) -> Response:
    """The bundle, byte for byte; the download is recorded first, as the API's."""
    path = bundle_copied(services_of(request).ledger, principal, production_id)
    name = f"production-{production_id}.zip"
    return FileResponse(path, media_type=MEDIA_TYPE, filename=name)


@router.get("/productions/{production_id}/verification")
def verification(request: Request, production_id: UUID, principal: RiskManagerOnly) -> Response:
    """The verifier run now on the bundle: OK, or each item that failed."""
    context = _production(request, principal, production_id)
    ledger = services_of(request).ledger
    path = productions_home(ledger) / context["production"].bundle_name
    key = str(ledger.practice["genesis_key_id"])
    report = verify_bundle(path, trusted_key=key)
    return render(
        request,
        "productions/verification.html",
        title="Verifier: OK" if report.ok else "Verifier: FAIL",
        report=report,
        key=key,
        **context,
    )
