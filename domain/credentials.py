"""Login accounts: a user's password hash, TOTP secret, recovery codes, failures and lockout.

One ``Account`` per username, its id derived from the username (``account_id``), so a username
is held once: a second ``Opened`` for it is refused by the ledger's optimistic concurrency. Its
events concern the user (``user:<user_id>``), so every login, failure and lockout is in the
user's chain. Secrets arrive already hashed (``api/auth.py`` hashes); the TOTP secret is kept in
the sealed payload because it is needed to check codes. No event holds a password.

Who may change whom is decided in ``domain/authority.py``; here, that the practice always keeps
an active owner, and the record of every refused attempt (``RefusedAttempt``).

Nobody sets another user's password. Creating a user or resetting one issues an enrollment code
(``issue_enrollment_code``: kept as its hash, spent once, expiring, a newer one voiding the
older) that the user spends to set their own password and, if the account holds none, enroll
their own authenticator (``enroll``). A reset voids the password at once and never the
authenticator; resetting that is its own step (``reset_authenticator``).

An owner locked out of their account gets back in with one of their recovery codes, or with a
second owner's approval: a one-time code that owner hands over in person, which expires and is
spent once (``approve_recovery``, ``use_recovery_approval``). The approval path also replaces the
TOTP secret, because whoever needs it may have lost their authenticator too. Neither path issues
new recovery codes: an owner does that for themselves, in a session started with a TOTP code
(``check_may_issue_recovery_codes``), and the new codes replace every earlier one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.domain import event

from domain.base import Record, user_subject
from domain.checks import identifier, moment, text
from domain.errors import AccountStateError, InvalidEntry, NotPermitted, UserStateError
from domain.throttle import ACCOUNT_LOCK_FAILURES
from domain.users import User

ACCOUNT_NAMESPACE = UUID("6f0c1f6e-3c3b-4d59-9d55-6b1c2f1e8a01")
FAILURE_REASONS = (
    "password",
    "totp",
    "recovery_code",
    "recovery_approval",
    "inactive",
    "enrollment_code",
)
LOGIN_REASONS = ("password", "totp", "inactive")  # what counts towards the account-wide limit
# The event types whose payload holds a login secret or a hash of one: a password hash, the TOTP
# secret, recovery or approval code hashes, a session token's hash. Their payloads never leave
# the practice: an e-discovery production withholds them (docs/BUNDLE_FORMAT.md §2.1). Logins,
# failures, lockouts and session ends hold none and are produced like any other event.
SECRET_EVENT_TYPES = frozenset(
    {
        "domain.credentials:Account.Opened",
        "domain.credentials:Account.PasswordChanged",
        "domain.credentials:Account.TotpEnrolled",
        "domain.credentials:Account.RecoveryCodesIssued",
        "domain.credentials:Account.RecoveryCodeUsed",
        "domain.credentials:Account.RecoveryApproved",
        "domain.credentials:Account.RecoveryApprovalUsed",
        "domain.credentials:Account.EnrollmentCodeIssued",
        "domain.credentials:Account.Enrolled",
        "domain.sessions:Session.Started",
    }
)


def account_id(username: str) -> UUID:
    return uuid5(ACCOUNT_NAMESPACE, username.casefold())


USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}", re.ASCII)


def check_username(value: object) -> str:
    name = text(value, "username")
    # ASCII only (USERNAME): a username in other scripts could pass for another user's
    # ("оlive" with a Cyrillic "о"), and the API's schema states the same rule as a pattern.
    if USERNAME.fullmatch(name) is None:
        raise InvalidEntry("username must be 1-64 letters, digits, '.', '_', '-' or '@'")
    return name


def _digest(value: object, field: str) -> str:
    if type(value) is not str or not value:
        raise InvalidEntry(f"{field} must be a hash in text")
    return value


def _totp_secret(value: object) -> bytes:
    if type(value) is not bytes or len(value) < 16:
        raise InvalidEntry("secret must be at least 16 random bytes")
    return value


@dataclass(frozen=True)
class RecoveryApproval:
    """The one outstanding approval of an owner's recovery: its code's hash, who gave it, and
    until when it may be spent."""

    code_hash: str
    approved_by: UUID
    expires_at: datetime


@dataclass(frozen=True)
class EnrollmentCode:
    """The one outstanding enrollment code: its hash, who issued it, and until when it may be
    spent."""

    code_hash: str
    issued_by: UUID
    expires_at: datetime


class Account(Record):
    @staticmethod
    def create_id(username: str) -> UUID:
        return account_id(username)

    @classmethod
    def open(
        cls, *, username: str, user_id: UUID, password_hash: str | None, at: datetime
    ) -> Account:
        """An account; with no password (``None``) until its user spends an enrollment code."""
        return cls(
            username=check_username(username),
            user_id=identifier(user_id, "user_id"),
            password_hash=None
            if password_hash is None
            else _digest(password_hash, "password_hash"),
            at=moment(at, "at"),
        )

    @event("Opened")
    def __init__(
        self, username: str, user_id: UUID, password_hash: str | None, at: datetime
    ) -> None:
        self.username = username
        self.user_id = user_id
        self.password_hash = password_hash
        self.totp_secret: bytes | None = None
        self.last_totp_step = -1
        self.recovery_codes: list[str] = []
        self.recovery_approval: RecoveryApproval | None = None
        self.enrollment: EnrollmentCode | None = None
        self.failures = 0
        self.locked_until: datetime | None = None

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.user_id),)

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
        self._enroll_totp(secret=_totp_secret(secret), by=identifier(by, "by"), at=moment(at, "at"))

    @event("TotpEnrolled")
    def _enroll_totp(self, secret: bytes, by: UUID, at: datetime) -> None:
        self.totp_secret = secret
        self.last_totp_step = -1

    def issue_enrollment_code(
        self, *, code_hash: str, by: UUID, at: datetime, expires_at: datetime
    ) -> None:
        """A new account's first code, or a reset (``by`` someone else: ``check_may_reset``).
        The password stops working at once (whoever asked for a reset may have reason to think
        it known), and only the latest code counts: a newer one voids the one before."""
        at, expires_at = moment(at, "at"), moment(expires_at, "expires_at")
        if expires_at <= at:
            raise InvalidEntry("expires_at must be after at")
        self._issue_enrollment_code(
            code_hash=_digest(code_hash, "code_hash"),
            issued_by=identifier(by, "by"),
            at=at,
            expires_at=expires_at,
        )

    @event("EnrollmentCodeIssued")
    def _issue_enrollment_code(
        self, code_hash: str, issued_by: UUID, at: datetime, expires_at: datetime
    ) -> None:
        self.enrollment = EnrollmentCode(code_hash, issued_by, expires_at)
        self.password_hash = None

    def reset_authenticator(self, *, by: UUID, at: datetime) -> None:
        """Forget the TOTP secret (``check_may_reset_authenticator`` says who may): the user
        enrolls a new one when they spend their next enrollment code."""
        if self.totp_secret is None:
            raise AccountStateError(f"account {self.id} holds no authenticator")
        self._reset_authenticator(by=identifier(by, "by"), at=moment(at, "at"))

    @event("AuthenticatorReset")
    def _reset_authenticator(self, by: UUID, at: datetime) -> None:
        self.totp_secret = None
        self.last_totp_step = -1

    def enroll(
        self, *, code_hash: str, password_hash: str, totp_secret: bytes | None, at: datetime
    ) -> None:
        """Spend the outstanding enrollment code before it expires: the user's own new password
        and, if the account holds no authenticator, their own new TOTP secret (one is needed
        exactly then: an existing authenticator is never replaced this way)."""
        code, at = self.enrollment, moment(at, "at")
        password_hash = _digest(password_hash, "password_hash")
        if code is None or code.code_hash != code_hash:
            raise AccountStateError(f"account {self.id}: no such unused enrollment code")
        if at >= code.expires_at:
            raise AccountStateError(f"account {self.id}: that enrollment code has expired")
        if (totp_secret is None) != (self.totp_secret is not None):
            raise InvalidEntry("a TOTP secret is enrolled exactly when the account holds none")
        self._enroll(
            code_hash=code_hash, issued_by=code.issued_by, password_hash=password_hash, at=at
        )
        if totp_secret is not None:
            # Its own event, as at every change of second factor.
            self._enroll_totp(secret=_totp_secret(totp_secret), by=self.user_id, at=at)

    @event("Enrolled")
    def _enroll(self, code_hash: str, issued_by: UUID, password_hash: str, at: datetime) -> None:
        self.enrollment = None
        self.password_hash = password_hash

    def issue_recovery_codes(self, *, code_hashes: list[str], at: datetime) -> None:
        """Replace every earlier recovery code, used or not, with these (at init, or when an owner
        issues themselves new ones: ``check_may_issue_recovery_codes`` says who may)."""
        if not code_hashes or len(set(code_hashes)) != len(code_hashes):
            raise InvalidEntry("code_hashes must be distinct hashes")
        checked = [_digest(h, "code_hashes") for h in code_hashes]
        self._issue_recovery_codes(code_hashes=checked, at=moment(at, "at"))

    @event("RecoveryCodesIssued")
    def _issue_recovery_codes(self, code_hashes: list[str], at: datetime) -> None:
        self.recovery_codes = list(code_hashes)

    def record_failure(self, *, reason: str, at: datetime, address: str | None = None) -> None:
        """Record a failed attempt, from ``address`` (the client's, as the server saw it). A
        failed login (not a wrong recovery or approval code: those are 100 random bits, and
        never locked out) counts towards the account-wide limit; the one that reaches it is
        followed by ``LockedOut``. Who must wait is decided in ``api/throttle.py`` by
        ``domain/throttle.py``: these events are the evidence."""
        if reason not in FAILURE_REASONS:
            raise InvalidEntry(f"reason must be one of {', '.join(FAILURE_REASONS)}")
        if address is not None and (type(address) is not str or not 0 < len(address) <= 64):
            raise InvalidEntry("address must be 1-64 characters")
        self._fail(reason=reason, at=moment(at, "at"), address=address)
        if reason in LOGIN_REASONS and self.failures == ACCOUNT_LOCK_FAILURES:
            self._lock(until=None, failures=self.failures)

    @event("LoginFailed")
    def _fail(self, reason: str, at: datetime, address: str | None = None) -> None:
        if reason in LOGIN_REASONS:
            self.failures += 1

    # ``until`` is None since the limit became ACCOUNT_LOCK_FAILURES in a row: the lock lasts
    # until a login from an address the account knows, or a recovery. Earlier lockouts (five
    # failures, fifteen minutes) carry their end.
    @event("LockedOut")
    def _lock(self, until: datetime | None, failures: int) -> None:
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

    def approve_recovery(
        self, *, code_hash: str, by: UUID, at: datetime, expires_at: datetime
    ) -> None:
        """Another owner (``by``; ``check_may_approve_recovery`` says who may) approves this
        account's recovery. Only the latest approval counts: handing over a new code voids the
        one before, so a code that went astray is dealt with by approving again."""
        approver = identifier(by, "by")
        if approver == self.user_id:
            raise NotPermitted("an owner may not approve their own recovery")
        at, expires_at = moment(at, "at"), moment(expires_at, "expires_at")
        if expires_at <= at:
            raise InvalidEntry("expires_at must be after at")
        self._approve_recovery(
            code_hash=_digest(code_hash, "code_hash"),
            approved_by=approver,
            at=at,
            expires_at=expires_at,
        )

    @event("RecoveryApproved")
    def _approve_recovery(
        self, code_hash: str, approved_by: UUID, at: datetime, expires_at: datetime
    ) -> None:
        self.recovery_approval = RecoveryApproval(code_hash, approved_by, expires_at)

    def use_recovery_approval(
        self, *, code_hash: str, password_hash: str, totp_secret: bytes, at: datetime
    ) -> None:
        """Spend the outstanding approval before it expires: a new password and a new TOTP
        secret, and a lockout lifted."""
        approval, at = self.recovery_approval, moment(at, "at")
        password_hash, secret = _digest(password_hash, "password_hash"), _totp_secret(totp_secret)
        if approval is None or approval.code_hash != code_hash:
            raise AccountStateError(f"account {self.id}: no such unused recovery approval")
        if at >= approval.expires_at:
            raise AccountStateError(f"account {self.id}: that recovery approval has expired")
        self._recover_with_approval(
            code_hash=code_hash,
            approved_by=approval.approved_by,
            password_hash=password_hash,
            at=at,
        )
        # Its own event, as at enrolment: the ledger shows every change of second factor alike.
        self._enroll_totp(secret=secret, by=self.user_id, at=at)

    @event("RecoveryApprovalUsed")
    def _recover_with_approval(
        self, code_hash: str, approved_by: UUID, password_hash: str, at: datetime
    ) -> None:
        self.recovery_approval = None
        self.password_hash = password_hash
        self.failures = 0
        self.locked_until = None


def _check_totp_session(session_method: str, doing: str) -> None:
    if "totp" not in session_method.split("+"):
        # A session begun with a recovery code or an approval skipped the second factor.
        raise NotPermitted(f"{doing} needs a session started with a TOTP code")


def check_may_approve_recovery(approver: User, target: User, *, session_method: str) -> None:
    """Only an active owner, in a session started with a TOTP code, approves the recovery of
    another active owner. Non-owners have an administrator set their password instead."""
    if not approver.has_role("owner"):
        raise NotPermitted("only an owner may approve an owner's recovery")
    _check_totp_session(session_method, "approving a recovery")
    if approver.id == target.id:
        raise NotPermitted("an owner may not approve their own recovery")
    if not target.has_role("owner"):
        raise UserStateError(
            f"user {target.id} is not an active owner: only owners' recovery is approved"
        )


def check_may_issue_recovery_codes(user: User, *, session_method: str) -> None:
    """Only an active owner issues themselves new recovery codes, in a session started with a
    TOTP code: one begun with a recovery code or an approval (or a stolen one with no second
    factor behind it) must not mint the means of the next takeover. The current password is
    asked for again as well (``api/auth.py``)."""
    if not user.has_role("owner"):
        raise NotPermitted("only an owner issues themselves recovery codes")
    _check_totp_session(session_method, "issuing recovery codes")


def check_approval_stands(approver: User, target: User) -> None:
    """At the time it is spent, an approval still needs both to be active owners: demoting or
    deactivating either voids it."""
    if not (approver.has_role("owner") and target.has_role("owner")) or approver.id == target.id:
        raise AccountStateError("that recovery approval no longer stands")


ADMIN_ACTIONS = (
    "create_user",
    "grant_role",
    "revoke_role",
    "deactivate",
    "set_password",
    "approve_recovery",
    "issue_recovery_codes",
    "reset",
    "reset_authenticator",
)


class RefusedAttempt(Record):
    """An administrative action the domain refused (e.g. a user administrator setting an owner's
    password): the attempt itself is evidence, in the actor's and the target's chains."""

    @classmethod
    def record(
        cls,
        *,
        actor_id: UUID,
        target_id: UUID | None,
        action: str,
        reason: str,
        at: datetime,
        detail: str | None = None,
    ) -> RefusedAttempt:
        """``detail``: what was attempted, beyond the action, in words that hold no secret and
        no PHI (the role asked for; for a refused ``create_user``, which has no target yet, the
        username and role)."""
        if action not in ADMIN_ACTIONS:
            raise InvalidEntry(f"action must be one of {', '.join(ADMIN_ACTIONS)}")
        return cls(
            actor_id=identifier(actor_id, "actor_id"),
            target_id=None if target_id is None else identifier(target_id, "target_id"),
            action=action,
            reason=text(reason, "reason"),
            at=moment(at, "at"),
            detail=None if detail is None else text(detail, "detail"),
        )

    @event("Refused")
    def __init__(
        self,
        actor_id: UUID,
        target_id: UUID | None,
        action: str,
        reason: str,
        at: datetime,
        detail: str | None = None,  # absent from attempts recorded before it existed
    ) -> None:
        self.actor_id = actor_id
        self.target_id = target_id
        self.action = action
        self.reason = reason
        self.at = at
        self.detail = detail

    def ledger_subjects(self) -> Iterable[str]:
        subjects = [user_subject(self.actor_id)]
        if self.target_id is not None:
            subjects.append(user_subject(self.target_id))
        return subjects


def check_owners_remain(active_owners_after: int) -> None:
    if active_owners_after < 1:
        raise NotPermitted("the practice must keep at least one active owner")
