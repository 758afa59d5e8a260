"""What the console's legal pages share (holds, disposal, productions, exports): the roles they
need, checked as the API's routers check them, and people named as a person reads them.

- Holds and productions are for the ``risk_manager`` role only, owners included in the refusal,
  as ``api/routers/holds.py`` has it; every refusal is recorded as the API records it.
- Patients are named by name and MRN, never by id. Reading those names is a read of the
  patients' demographics, recorded first (DESIGN.md rule 6) as a ``query`` for a legal hold
  (``HLEGAL``); a disposed record has no name left to read and is shown as such, its read
  recorded without naming the patient as a subject (``api/routers/holds.py`` says why).
- Users (custodians, who placed a hold, who proposed a disposal) are named by name and
  username; they are staff, not PHI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from pydantic import ValidationError

from api import auth
from api.auth import Principal
from api.console.web import (
    ConsoleUserDep,
    CsrfChecked,
    NavItem,
    Problem,
    problem_of,
    services_of,
)
from api.errors import ApiError, Forbidden
from api.refused_requests import refuse_role
from api.routers.users import accounts
from domain.errors import ChartError
from events.ledger import Ledger
from legal_hold import holds as lh
from legal_hold.errors import UnderLegalHold
from legal_hold.productions import Production
from projections.chart import chart
from projections.reads import Reader, record_access, search_patients
from projections.runner import Runner

ROLE = "risk_manager"
PURPOSE = "HLEGAL"  # HL7 PurposeOfUse: legal
PRODUCED = "legal_hold.productions:Production.Produced"


def _strict(request: Request, principal: Principal) -> Principal:
    """The principal if they hold the risk manager's role itself (an owner without it is
    refused, as by the API); a refusal is recorded, then answered with a 403 page."""
    if ROLE in principal.roles:
        return principal
    route = getattr(request.scope.get("route"), "path", None) or "?"
    ledger = services_of(request).ledger
    refuse_role(ledger, principal, f"{request.method} {route}", (ROLE,), None, auth.now())
    raise Forbidden(f"this needs the role {ROLE}")


def _risk_manager(request: Request, principal: ConsoleUserDep) -> Principal:
    return _strict(request, principal)


def _risk_manager_posting(request: Request, principal: CsrfChecked) -> Principal:
    return _strict(request, principal)


RiskManagerOnly = Annotated[Principal, Depends(_risk_manager)]
RiskManagerPosting = Annotated[Principal, Depends(_risk_manager_posting)]


class RoleNavItem(NavItem):
    """A navigation entry shown only to holders of its roles, owners not excepted: the hold
    pages refuse an owner who is not a risk manager, so their link is not offered them."""

    def shown_to(self, principal: Principal) -> bool:
        return self.roles is None or any(r in principal.roles for r in self.roles)


# -- people --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A user as the console names them."""

    user_id: UUID
    username: str
    name: str
    roles: tuple[str, ...]
    active: bool

    @property
    def label(self) -> str:
        return f"{self.name} ({self.username})"


def people(ledger: Ledger) -> dict[UUID, Person]:
    """Every user of the practice, by id, in the order their accounts were opened."""
    return {
        user.id: Person(user.id, account.username, user.name, tuple(user.roles), user.active)
        for account, user in accounts(ledger)
    }


def person_label(found: dict[UUID, Person], user_id: UUID | None) -> str:
    if user_id is None:
        return ""
    person = found.get(user_id)
    return person.label if person is not None else "an unknown user"


@dataclass(frozen=True)
class PatientName:
    """A patient as the console names them: family and given name, MRN and birth date."""

    patient_id: UUID
    name: str
    mrn: str
    birth_date: str

    @property
    def label(self) -> str:
        return f"{self.name} (MRN {self.mrn})" if self.mrn else self.name


def _demographics(ledger: Ledger, patient_id: UUID) -> PatientName | None:
    for entry in chart(ledger.db, patient_id):
        if entry.kind == "Patient":
            state = entry.state
            name = f"{state.get('family_name', '')}, {state.get('given_name', '')}".strip(", ")
            return PatientName(
                patient_id, name, str(state.get("mrn", "")), str(state.get("birth_date", ""))
            )
    return None


def reader(principal: Principal, purpose: str = PURPOSE) -> Reader:
    return Reader(principal.user_id, purpose, str(principal.session_id))


def patient_names(
    ledger: Ledger,
    runner: Runner,
    principal: Principal,
    patient_ids: Iterable[UUID],
    what: str,
    purpose: str = PURPOSE,
) -> dict[UUID, PatientName]:
    """The names of ``patient_ids`` (those with a record), their read recorded first: one
    ``query`` of demographics per patient named, for the page ``what``. A patient without a
    record (disposed of) is named by the page as such, never as the read's subject."""
    wanted = sorted(set(patient_ids), key=str)
    if not wanted:
        return {}
    runner.catch_up_to()
    found = {p: n for p in wanted if (n := _demographics(ledger, p)) is not None}
    if found:
        shown: list[UUID | None] = list(found)
        detail = {"legal_hold": what}
        done_by = reader(principal, purpose)
        record_access(ledger, done_by, "query", "demographics", shown, detail=detail)
    return found


def patient_label(names: dict[UUID, PatientName], patient_id: UUID) -> str:
    found = names.get(patient_id)
    return found.label if found is not None else "a patient with no record left (disposed of)"


def find_patients(
    ledger: Ledger, runner: Runner, principal: Principal, text: str, purpose: str = PURPOSE
) -> list[PatientName]:
    """Patients whose MRN or name contains ``text``: the API's search (each one shown is
    recorded as a query of their demographics), for a legal hold unless ``purpose`` says."""
    found = search_patients(ledger, runner, reader(principal, purpose), text)
    names = []
    for entry in found:
        state = entry.state
        name = f"{state.get('family_name', '')}, {state.get('given_name', '')}".strip(", ")
        names.append(
            PatientName(
                entry.entry_id, name, str(state.get("mrn", "")), str(state.get("birth_date", ""))
            )
        )
    return names


# -- productions of a matter ------------------------------------------------------------------


def matter_productions(ledger: Ledger, matter_id: UUID) -> list[Production]:
    """The matter's productions, oldest first (their events name the matter)."""
    with ledger.db.read() as c:
        c.execute("SELECT originator_id FROM stored_events WHERE topic = ?", (PRODUCED,))
        ids = [UUID(str(row[0])) for row in c.fetchall()]
    found = [ledger.repository.get(i) for i in ids]
    return sorted((p for p in found if p.matter_id == matter_id), key=lambda p: p.produced_at)


# -- refusals in words ----------------------------------------------------------------------

# What a form's handler answers on its own page: a form's fields, a domain rule, a role.
Refused = (ValidationError, ChartError, ApiError)


def invalid(error: BaseException) -> Problem:
    """A refusal in words: a form's fields by name (never their values), else the API's."""
    if isinstance(error, ValidationError):
        fields = sorted(
            {".".join(str(p) for p in e["loc"]) or "the form" for e in error.errors()}, key=str
        )
        return Problem(422, "Some fields are missing or invalid", ", ".join(fields))
    return problem_of(error)


def refusal_words(ledger: Ledger, error: BaseException, patient: str | None = None) -> Problem:
    """The page's words for a refusal: a hold names the holds and their matters by name (the
    API's detail names them by id), anything else as ``web.problem_of`` words it."""
    if isinstance(error, UnderLegalHold):
        holds = []
        for hold_id in error.hold_ids:
            hold = lh.get_hold(ledger, hold_id)
            matter = lh.get_matter(ledger, hold.matter_id)
            holds.append(f"“{hold.name}” of matter {matter.number} ({matter.name})")
        whose = f"The record of {patient}" if patient else "This record"
        return Problem(
            409,
            "Disposal refused: the record is under legal hold",
            f"{whose} is preserved by the legal hold {' and '.join(holds)}. Nothing of it may "
            "be disposed of until every hold on it is released. The refusal was recorded.",
        )
    return problem_of(error)
