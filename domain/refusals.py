"""Refused requests that concern no patient's record: a role the caller lacks, a session
token that names no session.

``Refusal`` (``domain/access.py``) records a refused attempt on a patient's record,
``RefusedAttempt`` (``domain/credentials.py``) a refused administrative action, and
``Session.RequestRefused`` a request with an ended session's token. What is left is here, so
that every access decision is an audit row (issue 17):

- ``RoleRefusal``: an authenticated user asked for a route their roles do not open (403). It
  names the route (its method and path template, never the URL's values) and the roles it
  needs, and the patient the path names, if any, in its payload and never as a subject (as
  ``legal_hold`` events do, legal_hold/retention.py): the audit view shows it under that
  patient, while the patient's chain, retention and productions stay as they were, and an id
  in a path that names no patient makes no chain.
- ``TokenRefusal``: a bearer token that names no session (malformed, unknown, forged). Nobody
  is known, so it is recorded by client address, and only the first per address per span
  (``api/refusal_budget.py`` says how many are written): ``suppressed`` counts the refusals
  from that address since the last one written that were not.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import choice, identifier, moment, optional_identifier, text
from domain.errors import InvalidEntry

TOKEN_REASONS = ("malformed-token", "unknown-session")


class RoleRefusal(Record):
    @classmethod
    def record(
        cls,
        *,
        user_id: UUID,
        route: str,
        roles_required: list[str],
        at: datetime,
        patient_id: UUID | None = None,
    ) -> RoleRefusal:
        return cls(
            user_id=identifier(user_id, "user_id"),
            route=text(route, "route")[:300],
            roles_required=[text(r, "roles_required") for r in roles_required],
            at=moment(at, "at"),
            patient_id=optional_identifier(patient_id, "patient_id"),
        )

    @event("Refused")
    def __init__(
        self,
        user_id: UUID,
        route: str,
        roles_required: list[str],
        at: datetime,
        patient_id: UUID | None,
    ) -> None:
        self.user_id = user_id
        self.route = route
        self.roles_required = roles_required
        self.at = at
        self.patient_id = patient_id

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.user_id),)


class TokenRefusal(Record):
    @classmethod
    def record(
        cls, *, address: str, reason: str, at: datetime, suppressed: int = 0
    ) -> TokenRefusal:
        if type(suppressed) is not int or suppressed < 0:
            raise InvalidEntry("suppressed must be a count")
        return cls(
            address=text(address, "address")[:64],
            reason=choice(reason, "reason", TOKEN_REASONS),
            at=moment(at, "at"),
            suppressed=suppressed,
        )

    @event("Refused")
    def __init__(self, address: str, reason: str, at: datetime, suppressed: int) -> None:
        self.address = address
        self.reason = reason
        self.at = at
        self.suppressed = suppressed
