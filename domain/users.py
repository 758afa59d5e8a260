"""Users of the practice and their roles, as domain facts.

Their login accounts are ``domain/credentials.py``; their sessions ``domain/sessions.py``. A
session started before the user's ``sessions_ended_at`` is over: deactivating a user, or changing
their credentials for them, ends every session they hold at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import identifier, moment, text
from domain.errors import UnknownRole, UserStateError

ROLES = ("owner", "clinician", "staff", "risk_manager", "auditor", "user_admin")


def check_role(role: object) -> str:
    if type(role) is not str or role not in ROLES:
        raise UnknownRole(f"role must be one of {', '.join(ROLES)}")
    return role


class User(Record):
    @classmethod
    def register(cls, *, name: str, role: str) -> User:
        return cls(name=text(name, "name"), role=check_role(role))

    @event("Registered")
    def __init__(self, name: str, role: str) -> None:
        self.name = name
        self.roles: tuple[str, ...] = (role,)
        self.active = True
        self.deactivated_at: datetime | None = None
        self.sessions_ended_at: datetime | None = None
        # The one session spared by the latest ``end_other_sessions`` (the user's own, when
        # they change their password); any later end of sessions ends it too.
        self.session_kept: UUID | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.id),)

    def has_role(self, role: str) -> bool:
        return self.active and role in self.roles

    def grant_role(self, role: str) -> None:
        self._check_active()
        if check_role(role) in self.roles:
            raise UserStateError(f"user {self.id} already has role {role}")
        self._grant_role(role=role)

    @event("RoleGranted")
    def _grant_role(self, role: str) -> None:
        self.roles = (*self.roles, role)

    def revoke_role(self, role: str) -> None:
        self._check_active()
        if check_role(role) not in self.roles:
            raise UserStateError(f"user {self.id} does not have role {role}")
        self._revoke_role(role=role)

    @event("RoleRevoked")
    def _revoke_role(self, role: str) -> None:
        self.roles = tuple(r for r in self.roles if r != role)

    def deactivate(self, *, reason: str, at: datetime) -> None:
        self._check_active()
        self._deactivate(reason=text(reason, "reason"), at=moment(at, "at"))

    @event("Deactivated")
    def _deactivate(self, reason: str, at: datetime) -> None:
        self.active = False
        self.deactivated_at = at
        self.sessions_ended_at = at
        self.session_kept = None

    def end_sessions(self, *, reason: str, at: datetime) -> None:
        """End every session the user holds now (e.g. after someone else set their password)."""
        self._end_sessions(reason=text(reason, "reason"), at=moment(at, "at"))

    @event("SessionsEnded")
    def _end_sessions(self, reason: str, at: datetime) -> None:
        self.sessions_ended_at = at
        self.session_kept = None

    def end_other_sessions(self, *, keep: UUID, reason: str, at: datetime) -> None:
        """End every session the user holds now but ``keep`` (the one they are changing their
        password in)."""
        self._end_other_sessions(
            keep=identifier(keep, "keep"), reason=text(reason, "reason"), at=moment(at, "at")
        )

    @event("OtherSessionsEnded")
    def _end_other_sessions(self, keep: UUID, reason: str, at: datetime) -> None:
        self.sessions_ended_at = at
        self.session_kept = keep

    def session_is_current(self, started_at: datetime, session_id: UUID | None = None) -> bool:
        ended = self.sessions_ended_at
        kept = self.session_kept
        return self.active and (
            ended is None or started_at >= ended or (kept is not None and session_id == kept)
        )

    def _check_active(self) -> None:
        if not self.active:
            raise UserStateError(f"user {self.id} is deactivated")
