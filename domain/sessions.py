"""Login sessions: started at login, ended by logout, idleness, or the user's revocation.

The token itself is never recorded: ``Started`` holds its SHA-256 (``api/auth.py``). A session is
its own stream, so checking one on a request reads two events at most.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import choice, identifier, moment, text
from domain.errors import AccountStateError

END_REASONS = ("logout", "idle", "expired", "revoked")
# Why a request carrying this session's token was refused: the session had ended (its end
# reason, or ``ended`` once recorded), or the token's secret was not this session's.
REFUSAL_REASONS = (*END_REASONS, "ended", "wrong-token")
# Refused requests on one session are recorded once per this span: the first one always (the
# next request of a revoked user), then a token replayed in a loop cannot write without bound.
REFUSAL_SPAN = timedelta(minutes=1)


class Session(Record):
    @classmethod
    def start(
        cls, *, session_id: UUID, user_id: UUID, token_hash: str, at: datetime, method: str
    ) -> Session:
        """``session_id`` is chosen by the caller: the token names it, and the token's hash is
        part of the starting event."""
        return cls(
            session_id=identifier(session_id, "session_id"),
            user_id=identifier(user_id, "user_id"),
            token_hash=text(token_hash, "token_hash"),
            started_at=moment(at, "at"),
            method=text(method, "method"),
        )

    @staticmethod
    def create_id(session_id: UUID) -> UUID:
        return session_id

    @event("Started")
    def __init__(
        self, session_id: UUID, user_id: UUID, token_hash: str, started_at: datetime, method: str
    ) -> None:
        self.user_id = user_id
        self.token_hash = token_hash
        self.started_at = started_at
        self.method = method
        self.ended_at: datetime | None = None
        self.end_reason: str | None = None
        self.last_refused_at: datetime | None = None
        # patient id -> (emergency access id, until): break-glass held in this session
        self.emergencies: dict[UUID, tuple[UUID, datetime]] = {}

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.user_id),)

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    def end(self, *, reason: str, at: datetime) -> None:
        if not self.is_open:
            raise AccountStateError(f"session {self.id} has already ended")
        self._end(reason=choice(reason, "reason", END_REASONS), at=moment(at, "at"))

    @event("Ended")
    def _end(self, reason: str, at: datetime) -> None:
        self.ended_at = at
        self.end_reason = reason

    def refuse_request(self, *, reason: str, at: datetime) -> bool:
        """Record that a request with this session's token was refused (``reason``), unless one
        was recorded less than ``REFUSAL_SPAN`` before ``at``; True if it was recorded."""
        at = moment(at, "at")
        last = getattr(self, "last_refused_at", None)  # sessions cached before it existed
        if last is not None and at - last < REFUSAL_SPAN:
            return False
        self._refuse_request(reason=choice(reason, "reason", REFUSAL_REASONS), at=at)
        return True

    @event("RequestRefused")
    def _refuse_request(self, reason: str, at: datetime) -> None:
        self.last_refused_at = at

    def start_emergency_access(
        self, *, access_id: UUID, patient_id: UUID, at: datetime, until: datetime
    ) -> None:
        """Flag the session: it holds break-glass access to the patient until ``until``."""
        if not self.is_open:
            raise AccountStateError(f"session {self.id} has already ended")
        self._start_emergency_access(
            access_id=identifier(access_id, "access_id"),
            patient_id=identifier(patient_id, "patient_id"),
            at=moment(at, "at"),
            until=moment(until, "until"),
        )

    @event("EmergencyAccessStarted")
    def _start_emergency_access(
        self, access_id: UUID, patient_id: UUID, at: datetime, until: datetime
    ) -> None:
        if not hasattr(self, "emergencies"):
            self.emergencies = {}
        self.emergencies[patient_id] = (access_id, until)

    def emergency_access(self, patient_id: UUID, at: datetime) -> UUID | None:
        """The emergency access this session holds to the patient at ``at``, if any."""
        held = getattr(self, "emergencies", {}).get(patient_id)
        if held is None or at >= held[1]:
            return None
        return held[0]
