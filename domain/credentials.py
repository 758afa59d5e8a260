"""Login accounts: a user's password hash, TOTP secret, recovery codes, failures and lockout.

One ``Account`` per username, its id derived from the username (``account_id``), so a username
is held once: a second ``Opened`` for it is refused by the ledger's optimistic concurrency. Its
events concern the user (``user:<user_id>``), so every login, failure and lockout is in the
user's chain. Secrets arrive already hashed (``api/auth.py`` hashes); the TOTP secret is kept in
the sealed payload because it is needed to check codes. No event holds a password.

Who may change whom is decided here too: no non-owner removes, demotes or changes the
credentials of an owner, and the practice always keeps an active owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import identifier, moment, text
from domain.errors import AccountStateError, InvalidEntry, NotPermitted
from domain.users import OWNER_GRANTED, User

ACCOUNT_NAMESPACE = UUID("6f0c1f6e-3c3b-4d59-9d55-6b1c2f1e8a01")
FAILURE_REASONS = ("password", "totp", "recovery_code", "inactive")


def account_id(username: str) -> UUID:
    return uuid5(ACCOUNT_NAMESPACE, username.casefold())


def check_username(value: object) -> str:
    name = text(value, "username")
    if len(name) > 64 or not all(c.isalnum() or c in "._-@" for c in name):
        raise InvalidEntry("username must be 1-64 letters, digits, '.', '_', '-' or '@'")
    return name


def _digest(value: object, field: str) -> str:
    if type(value) is not str or not value:
        raise InvalidEntry(f"{field} must be a hash in text")
    return value


class Account(Record):
    @staticmethod
    def create_id(username: str) -> UUID:
        return account_id(username)

    @classmethod
    def open(cls, *, username: str, user_id: UUID, password_hash: str, at: datetime) -> Account:
        return cls(
            username=check_username(username),
            user_id=identifier(user_id, "user_id"),
            password_hash=_digest(password_hash, "password_hash"),
            at=moment(at, "at"),
        )

    @event("Opened")
    def __init__(self, username: str, user_id: UUID, password_hash: str, at: datetime) -> None:
        self.username = username
        self.user_id = user_id
        self.password_hash = password_hash
        self.totp_secret: bytes | None = None
        self.last_totp_step = -1
        self.recovery_codes: list[str] = []
        self.failures = 0
        self.locked_until: datetime | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.user_id),)

    def is_locked(self, at: datetime) -> bool:
        return self.locked_until is not None and at < self.locked_until

    def change_password(self, *, password_hash: str, by: UUID, at: datetime) -> None:
        self._change_password(
            password_hash=_digest(password_hash, "password_hash"),
            by=identifier(by, "by"),
            at=moment(at, "at"),
        )

    @event("PasswordChanged")
    def _change_password(self, password_hash: str, by: UUID, at: datetime) -> None:
        self.password_hash = password_hash

    def enroll_totp(self, *, secret: bytes, by: UUID, at: datetime) -> None:
        if type(secret) is not bytes or len(secret) < 16:
            raise InvalidEntry("secret must be at least 16 random bytes")
        self._enroll_totp(secret=secret, by=identifier(by, "by"), at=moment(at, "at"))

    @event("TotpEnrolled")
    def _enroll_totp(self, secret: bytes, by: UUID, at: datetime) -> None:
        self.totp_secret = secret
        self.last_totp_step = -1

    def issue_recovery_codes(self, *, code_hashes: list[str], at: datetime) -> None:
        if not code_hashes or len(set(code_hashes)) != len(code_hashes):
            raise InvalidEntry("code_hashes must be distinct hashes")
        checked = [_digest(h, "code_hashes") for h in code_hashes]
        self._issue_recovery_codes(code_hashes=checked, at=moment(at, "at"))

    @event("RecoveryCodesIssued")
    def _issue_recovery_codes(self, code_hashes: list[str], at: datetime) -> None:
        self.recovery_codes = list(code_hashes)

    def record_failure(
        self, *, reason: str, at: datetime, max_failures: int, lockout: timedelta
    ) -> None:
        """Count a failed login; the ``max_failures``-th in a row locks the account for a while."""
        if reason not in FAILURE_REASONS:
            raise InvalidEntry(f"reason must be one of {', '.join(FAILURE_REASONS)}")
        self._fail(reason=reason, at=moment(at, "at"))
        if self.failures >= max_failures and not self.is_locked(at):
            self._lock(until=at + lockout, failures=self.failures)

    @event("LoginFailed")
    def _fail(self, reason: str, at: datetime) -> None:
        self.failures += 1

    @event("LockedOut")
    def _lock(self, until: datetime, failures: int) -> None:
        self.locked_until = until

    def record_login(
        self, *, session_id: UUID, at: datetime, method: str, totp_step: int | None = None
    ) -> None:
        if totp_step is not None and totp_step <= self.last_totp_step:
            raise AccountStateError(f"account {self.id}: that TOTP code was already used")
        self._log_in(
            session_id=identifier(session_id, "session_id"),
            at=moment(at, "at"),
            method=text(method, "method"),
            totp_step=totp_step,
        )

    @event("LoggedIn")
    def _log_in(self, session_id: UUID, at: datetime, method: str, totp_step: int | None) -> None:
        self.failures = 0
        self.locked_until = None
        if totp_step is not None:
            self.last_totp_step = totp_step

    def use_recovery_code(self, *, code_hash: str, password_hash: str, at: datetime) -> None:
        """Spend one recovery code to set a new password; also lifts a lockout."""
        if code_hash not in self.recovery_codes:
            raise AccountStateError(f"account {self.id}: no such unused recovery code")
        self._recover(
            code_hash=code_hash,
            password_hash=_digest(password_hash, "password_hash"),
            at=moment(at, "at"),
        )

    @event("RecoveryCodeUsed")
    def _recover(self, code_hash: str, password_hash: str, at: datetime) -> None:
        self.recovery_codes = [c for c in self.recovery_codes if c != code_hash]
        self.password_hash = password_hash
        self.failures = 0
        self.locked_until = None


def check_may_administer(actor: User, target: User) -> None:
    """Only an owner removes, demotes or changes the credentials of an owner (or of a user
    administrator); a non-owner never changes their own roles."""
    if not actor.active:
        raise NotPermitted(f"user {actor.id} is deactivated")
    if actor.has_role("owner"):
        return
    if any(r in target.roles for r in OWNER_GRANTED):
        raise NotPermitted(f"only an owner may change user {target.id}")


def check_may_grant(actor: User, role: str, target: User | None = None) -> None:
    if role in OWNER_GRANTED and not actor.has_role("owner"):
        raise NotPermitted(f"only an owner may grant the role {role}")
    if target is not None and target.id == actor.id and not actor.has_role("owner"):
        raise NotPermitted("only an owner may change their own roles")


ADMIN_ACTIONS = ("create_user", "grant_role", "revoke_role", "deactivate", "set_password")


class RefusedAttempt(Record):
    """An administrative action the domain refused (e.g. a user administrator setting an owner's
    password): the attempt itself is evidence, in the actor's and the target's chains."""

    @classmethod
    def record(
        cls, *, actor_id: UUID, target_id: UUID | None, action: str, reason: str, at: datetime
    ) -> RefusedAttempt:
        if action not in ADMIN_ACTIONS:
            raise InvalidEntry(f"action must be one of {', '.join(ADMIN_ACTIONS)}")
        return cls(
            actor_id=identifier(actor_id, "actor_id"),
            target_id=None if target_id is None else identifier(target_id, "target_id"),
            action=action,
            reason=text(reason, "reason"),
            at=moment(at, "at"),
        )

    @event("Refused")
    def __init__(
        self, actor_id: UUID, target_id: UUID | None, action: str, reason: str, at: datetime
    ) -> None:
        self.actor_id = actor_id
        self.target_id = target_id
        self.action = action
        self.reason = reason
        self.at = at

    def ledger_subjects(self) -> Iterable[str]:
        subjects = [user_subject(self.actor_id)]
        if self.target_id is not None:
            subjects.append(user_subject(self.target_id))
        return subjects


def check_owners_remain(active_owners_after: int) -> None:
    if active_owners_after < 1:
        raise NotPermitted("the practice must keep at least one active owner")
