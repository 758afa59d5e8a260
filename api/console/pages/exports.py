"""EHI exports (ONC 170.315(b)(10)) in the console, for owners and risk managers as over the API:
start one for a patient found by MRN or name, or for every patient, with the purpose it serves;
its progress on the job's page; its files to download, each download recorded as the API
records it (``api/routers/exports.py``: ``start_export``, ``file_copied``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, get_args
from uuid import UUID

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, Response

from api.auth import Principal
from api.console.legal import (
    PatientName,
    find_patients,
    invalid,
    patient_label,
    patient_names,
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
from api.errors import NotFound
from api.routers.exports import (
    DOCUMENTATION_FILE,
    MEDIA_TYPES,
    file_copied,
    served,
    start_export,
)
from api.schemas import Purpose
from domain.errors import ChartError
from projections.ehi_export import EXTENSION, MANIFEST, README, exports_home, file_name
from projections.reads import PatientNotFound

router = APIRouter(route_class=ConsoleRoute)
NAV = [NavItem("EHI exports", PREFIX + "/exports", ("risk_manager",))]
ROLES = ("risk_manager",)  # and owners, as the API's ``Exporter``
ExporterPage = Annotated[Principal, require_console_role(*ROLES)]
PURPOSES = {
    "PATRQT": "the patient's request",
    "HOPERAT": "health care operations",
    "HLEGAL": "legal",
    "HCOMPL": "compliance",
    "HPAYMT": "payment",
    "HRESCH": "research",
    "PUBHLTH": "public health",
    "TREAT": "treatment",
}
assert set(PURPOSES) == set(get_args(Purpose))
Text = Annotated[str, Form()]


def _form(
    request: Request,
    principal: Principal,
    *,
    found: list[PatientName] | None = None,
    fields: dict[str, Any] | None = None,
    problem: Problem | None = None,
    code: int = 200,
) -> Response:
    jobs = services_of(request).jobs
    mine = [j for j in jobs.listed(principal.user_id, 20) if j.kind == "export"]
    return render(
        request,
        "exports/index.html",
        status_code=code,
        title="EHI exports",
        found=found,
        fields=fields or {"purpose": "PATRQT", "scope": "patient", "query": ""},
        purposes=PURPOSES,
        exports=mine,
        problem=problem,
    )


@router.get("/exports")
def exports(request: Request, principal: ExporterPage) -> Response:
    return _form(request, principal)


@router.post("/exports")
def start(
    request: Request,
    principal: CsrfChecked,
    exporter: ExporterPage,  # the API's rule, its refusal recorded
    action: Text = "export",
    query: Text = "",
    scope: Text = "patient",
    patient_id: Text = "",
    purpose: Text = "PATRQT",
) -> Response:
    """Find the patient (the form comes back with them to choose), or start the export."""
    services = services_of(request)
    ledger = services.ledger
    fields = {"purpose": purpose, "scope": scope, "query": query, "patient_id": patient_id}
    if purpose not in PURPOSES:
        problem = Problem(422, "Some fields are missing or invalid", "purpose")
        return _form(request, principal, fields=fields, problem=problem, code=422)
    if action == "search":
        found = find_patients(ledger, services.runner, principal, query.strip(), purpose)
        return _form(request, principal, found=found, fields=fields)
    try:
        chosen = None if scope == "all" else UUID(patient_id)
    except ValueError:
        problem = Problem(422, "Choose a patient", "Find the patient, then choose them.")
        return _form(request, principal, fields=fields, problem=problem, code=422)
    try:
        job = start_export(ledger, services.jobs, principal, chosen, purpose, served(request))
    except (ChartError, PatientNotFound, NotFound, ValueError) as error:
        problem = invalid(error)
        return _form(request, principal, fields=fields, problem=problem, code=problem.status)
    return redirect(request, f"{PREFIX}/jobs/{job.job_id}", "Export started.")


def _manifest(request: Request, export_id: UUID) -> dict[str, Any]:
    path = exports_home(services_of(request).ledger) / str(export_id) / MANIFEST
    if not path.is_file():
        raise NotFound(f"no finished export {export_id}")
    manifest: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return manifest


@router.get("/exports/{export_id}")
def export(request: Request, export_id: UUID, principal: ExporterPage) -> Response:
    """A finished export: whom it carries, when it was made, and its files to download."""
    manifest = _manifest(request, export_id)
    made = manifest["extension"][EXTENSION]
    whom = "every patient"
    if made["scope"] == "patient":
        services = services_of(request)
        patient = UUID(made["patient"])
        names = patient_names(
            services.ledger, services.runner, principal, [patient], "export", made["purposeOfUse"]
        )
        whom = patient_label(names, patient)
    named = [entry["url"] for entry in [*manifest["output"], *made.get("native", [])]]
    files = [file_name(url, str(export_id)) for url in named]
    files += [MANIFEST, README, DOCUMENTATION_FILE]
    return render(
        request,
        "exports/export.html",
        title="EHI export",
        export_id=export_id,
        manifest=manifest,
        made=made,
        whom=whom,
        purpose=PURPOSES.get(made["purposeOfUse"], made["purposeOfUse"]),
        files=files,
    )


@router.get("/exports/{export_id}/{name:path}")
def download(request: Request, export_id: UUID, name: str, principal: ExporterPage) -> Response:
    """One file of the export; the download is recorded first, as the API's."""
    path = file_copied(services_of(request).ledger, principal, export_id, name)
    kind = MEDIA_TYPES[name.rpartition(".")[2]]
    return FileResponse(path, media_type=kind, filename=path.name)
