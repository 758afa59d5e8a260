"""Authentication: password hashes, TOTP codes, session tokens, and the login services.

- Passwords: PBKDF2-HMAC-SHA-256 (FIPS 140-2 approved) with a 16-byte salt, at
  ``Settings.pbkdf2_iterations`` (OWASP: 600,000); the stored string names its own count, so a
  lower count from the past still verifies.
- TOTP: RFC 6238 over HOTP (RFC 4226), 30-second steps, 6 digits, HMAC-SHA-1 by default (what
  authenticator apps use), one step of drift either way, and a code is accepted once. Every
  role needs a code at login (``Settings.totp_required_roles``).
- Enrollment codes: nobody sets another user's password or sees their TOTP secret. Creating a
  user (``new_pending_account``) or resetting one (``issue_enrollment_code``) gives a one-time
  code of the recovery codes' form, kept as its SHA-256 hash, for the administrator to hand over;
  it expires after ``Settings.enrollment_code_lifetime`` and a newer one voids it. The user
  spends it (``enroll``) to set their own password and, when the account holds no authenticator,
  to enroll one: the new secret is returned to them alone. Only the first owner (at init) and
  the demo's made-up users are made enrolled at once (``new_account``).
- Sessions: the token is ``clt_<session id>.<32 random bytes>``; only its SHA-256 is recorded.
  Every request loads the session and its user from the ledger, so an ended session, a
  deactivated user or one whose sessions were ended is refused on the very next request.
- Recovery codes: 10 random codes of 20 base32 characters (100 bits), kept as SHA-256 hashes.
  ``chartledger init`` issues the first owner's; any owner issues themselves a new set (which
  replaces every earlier code) from a session started with a TOTP code, giving their current
  password again (``issue_recovery_codes``): a session token alone never mints codes.
- Recovery approvals: one code of the same form, made when a second owner approves an owner's
  recovery, kept as its SHA-256 hash, spent once before ``Settings.recovery_approval_lifetime``
  is up. Spending it also replaces the TOTP secret (returned once), which the recovery-code path
  keeps: a recovery code is the owner's own second proof, while an approval is for the owner who
  has lost their authenticator (or cannot trust it) as well as their password.

- Throttling (NIST SP 800-63B §5.2.2): failed logins are counted per username and client
  address (``api/throttle.py``, rule in ``domain/throttle.py``), so an address that keeps
  failing waits longer and longer while the owner's right password and code from elsewhere
  still get in; 100 failures in a row lock the account to addresses it never logged in from,
  and recovery codes and approvals are never throttled and lift that lock. A username that
  does not exist is throttled, answered and timed as one that does (``api/login_timing.py``).

Logins, failures (with the client's address), lockouts, logouts and recoveries are events
(``domain/credentials.py``, ``domain/sessions.py``); errors say no more than "wrong
credentials" to the caller.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import functools
import hashlib
import hmac
import secrets
import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, TypeVar
from urllib.parse import quote
from uuid import UUID, uuid4, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from api.activity import LastSeen
from api.errors import Unauthenticated
from api.login_timing import KNOWN_FAILURES
from api.refusal_budget import RefusalBudget
from api.refused_requests import refuse_session, refuse_token
from api.settings import Settings
from api.throttle import Admission, LoginThrottle
from domain.base import user_subject
from domain.credentials import Account, account_id, check_approval_stands, check_username
from domain.errors import AccountStateError, InvalidEntry
from domain.sessions import Session
from domain.users import User
from events.context import acting
from events.ledger import Ledger

PBKDF2 = "pbkdf2_sha256"
MIN_PASSWORD, MAX_PASSWORD = 12, 1024
TOTP_STEP, TOTP_DIGITS = 30, 6
TOKEN_PREFIX = "clt_"
RECOVERY_CODES = 10
# Tries at saving an account that concurrent attempts on it keep changing: as many as the
# throttle lets through at once from one address, and then some.
SAVE_ATTEMPTS = 10
ACCOUNT_OPENED = "domain.credentials:Account.Opened"
T = TypeVar("T")


# -- passwords ----------------------------------------------------------------------------------


def check_password(password: object) -> str:
    if type(password) is not str or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidEntry(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return password


def hash_password(password: str, iterations: int) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"{PBKDF2}${iterations}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str | None) -> bool:
    if stored is None:  # no password yet (or reset): an enrollment code is outstanding
        return False
    try:
        scheme, count, salt, digest = stored.split("$")
        iterations = int(count)
    except ValueError:
        return False
    if scheme != PBKDF2 or iterations < 1:
        return False
    computed = hashlib.pbkdf2_hmac("sha256", password.encode(), _unb64(salt), iterations)
    return hmac.compare_digest(computed, _unb64(digest))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode())


# -- TOTP (RFC 6238) --------------------------------------------------------------------------


def hotp(secret: bytes, counter: int, digits: int = TOTP_DIGITS, algorithm: str = "sha1") -> str:
    """RFC 4226 §5.3: HMAC the 8-byte counter, truncate dynamically, keep ``digits`` digits."""
    mac = hmac.new(secret, struct.pack(">Q", counter), algorithm).digest()
    offset = mac[-1] & 0x0F
    code = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(code % 10**digits).zfill(digits)


def totp(
    secret: bytes,
    unix_time: int,
    digits: int = TOTP_DIGITS,
    algorithm: str = "sha1",
    step: int = TOTP_STEP,
) -> str:
    """RFC 6238 §4.2: HOTP with the counter T = floor(unix time / step)."""
    return hotp(secret, unix_time // step, digits, algorithm)


def matching_totp_step(secret: bytes, code: str, at: datetime, window: int = 1) -> int | None:
    """The time step whose code ``code`` is, within ``window`` steps of ``at``; else None."""
    if type(code) is not str or len(code) != TOTP_DIGITS or not code.isdigit():
        return None
    now = int(at.timestamp()) // TOTP_STEP
    found = None
    for counter in range(now - window, now + window + 1):
        if hmac.compare_digest(hotp(secret, counter), code):
            found = counter
    return found


def new_totp_secret() -> bytes:
    return secrets.token_bytes(20)


def totp_uri(secret: bytes, username: str, issuer: str = "Chartledger") -> str:
    """The ``otpauth://`` URI an authenticator app reads (as a QR code or typed in)."""
    label = quote(f"{issuer}:{username}")
    return f"otpauth://totp/{label}?secret={base32(secret)}&issuer={quote(issuer)}"


def base32(secret: bytes) -> str:
    return base64.b32encode(secret).decode().rstrip("=")


def from_base32(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


# -- tokens and recovery codes -------------------------------------------------------------


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_token(session_id: UUID) -> str:
    return f"{TOKEN_PREFIX}{session_id.hex}.{secrets.token_urlsafe(32)}"


def session_id_of(token: str) -> UUID | None:
    head, dot, secret = token.partition(".")
    if not head.startswith(TOKEN_PREFIX) or not dot or not secret:
        return None
    try:
        return UUID(hex=head.removeprefix(TOKEN_PREFIX))
    except ValueError:
        return None


def new_recovery_codes() -> list[str]:
    return [new_one_time_code() for _ in range(RECOVERY_CODES)]


def new_one_time_code() -> str:
    """A code as people copy it: ``ABCDE-FGHIJ-KLMNO-PQRST`` (100 random bits)."""
    return one_time_code(secrets.token_bytes(15))


def one_time_code(raw: bytes) -> str:
    """The code for 15 bytes (only the first 100 bits of them count): 20 base32 characters in
    groups of five."""
    letters = base64.b32encode(raw).decode()[:20]
    return "-".join(letters[i : i + 5] for i in range(0, 20, 5))


def recovery_code_hash(code: str) -> str:
    return sha256_hex(code.strip().upper().replace(" ", ""))


# -- the services ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, their roles now, and the session."""

    user_id: UUID
    roles: tuple[str, ...]
    session_id: UUID
    # break-glass held by the session: (patient id, emergency access id, until)
    emergencies: tuple[tuple[UUID, UUID, datetime], ...] = ()

    def emergency_access(self, patient_id: UUID, at: datetime) -> UUID | None:
        for patient, access_id, until in self.emergencies:
            if patient == patient_id and at < until:
                return access_id
        return None

    @property
    def subject(self) -> str:
        return user_subject(self.user_id)

    def acting(self) -> Any:
        return acting(self.subject, str(self.session_id))


@dataclass(frozen=True)
class NewAccount:
    user: User
    account: Account
    totp_secret: bytes
    recovery_codes: list[str]


@dataclass(frozen=True)
class PendingAccount:
    """A new user and their account, waiting for the user to spend ``code`` (shown once, to
    the administrator who made them, to hand over)."""

    user: User
    account: Account
    code: str
    expires_at: datetime


def now() -> datetime:
    return datetime.now(UTC)


def load(ledger: Ledger, aggregate_id: UUID, kind: type[Any], *, hot: bool = False) -> Any:
    """The aggregate with that id if it is a ``kind``; else ``AggregateNotFoundError``.

    ``hot`` reads through the ledger's cache of aggregates read often (sessions and users on
    every request; accounts for ``GET /auth/me``), which is brought up to date on every get by
    one query for newer events (another process's too), and returns the cached object itself:
    read it, never change it (copy it first). Never for patients' records, which must leave
    memory when they are disposed of."""
    if hot:
        (found,) = ledger.hot.get(aggregate_id)
    else:
        found = ledger.repository.get(aggregate_id)
    if not isinstance(found, kind):
        raise AggregateNotFoundError(f"no {kind.__name__} {aggregate_id}")
    return found


def new_account(
    settings: Settings,
    *,
    username: str,
    name: str,
    role: str,
    password: str,
    with_recovery_codes: bool = False,
    totp_secret: bytes | None = None,
) -> NewAccount:
    """A user and their account, unsaved, enrolled at once: a password and a TOTP secret (new,
    unless given), and recovery codes if asked. Only for the first owner at init, who runs it
    themselves, and for the demo's made-up users; an administrator makes everyone else with
    ``new_pending_account``, so that no secret of theirs passes through the administrator."""
    at = now()
    user = User.register(name=name, role=role)
    account = Account.open(
        username=check_username(username),
        user_id=user.id,
        password_hash=hash_password(check_password(password), settings.pbkdf2_iterations),
        at=at,
    )
    secret = new_totp_secret() if totp_secret is None else totp_secret
    account.enroll_totp(secret=secret, by=user.id, at=at)
    codes: list[str] = []
    if with_recovery_codes:
        codes = new_recovery_codes()
        account.issue_recovery_codes(code_hashes=[recovery_code_hash(c) for c in codes], at=at)
    return NewAccount(user, account, secret, codes)


def new_pending_account(
    settings: Settings, *, username: str, name: str, role: str, by: UUID
) -> PendingAccount:
    """A user and their account (no password, no authenticator), unsaved, with an enrollment
    code issued ``by`` the administrator creating them."""
    at = now()
    user = User.register(name=name, role=role)
    account = Account.open(
        username=check_username(username), user_id=user.id, password_hash=None, at=at
    )
    code, expires_at = issue_enrollment_code(settings, account, by, at=at)
    return PendingAccount(user, account, code, expires_at)


def issue_enrollment_code(
    settings: Settings, account: Account, by: UUID, *, at: datetime | None = None
) -> tuple[str, datetime]:
    """A new enrollment code for ``account`` (unsaved; the caller checked who may), returned
    once and kept only as its hash, and when it expires. Voids the password and any earlier
    code."""
    at = now() if at is None else at
    code = new_one_time_code()
    expires_at = at + settings.enrollment_code_lifetime
    account.issue_enrollment_code(
        code_hash=recovery_code_hash(code), by=by, at=at, expires_at=expires_at
    )
    return code, expires_at


# Each ledger's user id -> account id. Once found, the first account opened in a user's chain
# stays the first (the log is append only), so a process looks each one up once.
_account_ids: weakref.WeakKeyDictionary[Ledger, dict[UUID, UUID]] = weakref.WeakKeyDictionary()


def account_of_user(ledger: Ledger, user_id: UUID, *, hot: bool = False) -> Account:
    """The user's login account: the one opened in the user's chain (an account's events all
    concern its user, ``Account.ledger_subjects``), found by the user's leaves, first one first.
    ``hot`` as for ``load``: up to date, but the cache's own object, to read and never change."""
    known = _account_ids.setdefault(ledger, {})
    found = known.get(user_id)
    if found is None:
        with ledger.db.read() as c:
            c.execute(
                "SELECT l.stream FROM ledger_links k "
                "JOIN ledger_leaves l ON l.position = k.position "
                "JOIN stored_events e "
                "ON e.originator_id = l.stream AND e.originator_version = l.version "
                "WHERE k.subject = ? AND l.version = 1 AND e.topic = ? ORDER BY k.seq LIMIT 1",
                (user_subject(user_id), ACCOUNT_OPENED),
            )
            row = c.fetchone()
        if row is None:
            raise AggregateNotFoundError(f"no account for user {user_id}")
        found = known[user_id] = UUID(str(row[0]))
    return load(ledger, found, Account, hot=hot)


def _account(ledger: Ledger, settings: Settings, username: object) -> Account:
    if type(username) is not str or not username:
        raise Unauthenticated("wrong credentials")
    try:
        return load(ledger, account_id(username), Account)
    except AggregateNotFoundError:
        # Spend the time a real check would, so timing does not tell which usernames exist.
        password_matches("x", _unknown_hash(settings.pbkdf2_iterations))
        raise Unauthenticated("wrong credentials") from None


@functools.cache
def _unknown_hash(iterations: int) -> str:
    """A stored-password string no password matches, at ``iterations``: checking a password
    against it costs what checking one against a real account's costs."""
    return f"{PBKDF2}${iterations}${_b64(bytes(16))}${_b64(bytes(32))}"


def _account_and_user(ledger: Ledger, key: UUID) -> tuple[Account, User] | None:
    """The account with id ``key`` (a copy, to change) and its user (read only), both up to
    date; None if there is no such account, after the same reads a found one costs."""
    try:
        (account,) = ledger.hot.get(key)
    except AggregateNotFoundError:
        with contextlib.suppress(AggregateNotFoundError):
            ledger.hot.get(uuid5(key, "user"))  # what reading the user would cost: no such id
        return None
    if not isinstance(account, Account):
        return None
    (user,) = ledger.hot.get(account.user_id)
    if not isinstance(user, User):
        return None
    return copy.deepcopy(account), user


def _refuse(
    ledger: Ledger,
    settings: Settings,
    account: Account,
    reason: str,
    *,
    within: Principal | None = None,
    address: str | None = None,
    admission: Admission | None = None,
) -> NoReturn:
    """Record the failure (from ``address``; and the account-wide lock if it reaches it), then
    refuse: 429 when the attempt (``admission``, counted by the throttle) leaves its address
    waiting or the account locked to it, else 401. A failure ``within`` a session (a password
    given again to confirm a step) is recorded under that session."""
    at = now()
    for attempt in range(SAVE_ATTEMPTS):
        try:
            account.record_failure(reason=reason, at=at, address=address)
            with acting(None) if within is None else within.acting():
                ledger.save(account)
            break
        except IntegrityError:
            # Another attempt on the same account was recorded first: count on top of it.
            if attempt == SAVE_ATTEMPTS - 1:
                raise
            account = load(ledger, account.id, Account)
    _answer_failure(admission, at)


def _answer_failure(admission: Admission | None, at: datetime) -> NoReturn:
    refusal = None if admission is None else admission.refusal(at)
    if refusal is not None:
        raise refusal
    raise Unauthenticated("wrong credentials")


def _start_session(
    ledger: Ledger,
    account: Account,
    user: User,
    method: str,
    totp_step: int | None = None,
    also: tuple[Any, ...] = (),
) -> tuple[str, Session]:
    at = now()
    session_id = uuid4()
    token = new_token(session_id)
    session = Session.start(
        session_id=session_id, user_id=user.id, token_hash=sha256_hex(token), at=at, method=method
    )
    account.record_login(session_id=session.id, at=at, method=method, totp_step=totp_step)
    with acting(user_subject(user.id), str(session.id)):
        ledger.save(*also, account, session)
    return token, session


def log_in(
    ledger: Ledger,
    settings: Settings,
    username: object,
    password: object,
    code: object,
    *,
    throttle: LoginThrottle,
    address: str,
) -> tuple[str, Session]:
    """A session for the right password (and TOTP code, where needed) from ``address``, unless
    the throttle holds that address back for this username (``api/throttle.py``): a username
    that does not exist is throttled, answered and timed as one that does."""
    if type(username) is not str or not username:
        raise Unauthenticated("wrong credentials")
    key, at, started = account_id(username), now(), time.perf_counter()
    admission = throttle.admit(key, address, at)
    found = _account_and_user(ledger, key)
    if found is None:
        besides_the_hash = time.perf_counter() - started
        password_matches(str(password), _unknown_hash(settings.pbkdf2_iterations))
        KNOWN_FAILURES.wait_out(besides_the_hash)
        _answer_failure(admission, at)
    account, user = found
    hashing = 0.0

    def refuse(reason: str) -> NoReturn:
        try:
            _refuse(ledger, settings, account, reason, address=address, admission=admission)
        finally:
            KNOWN_FAILURES.observe(time.perf_counter() - started - hashing)

    if type(password) is not str:
        refuse("password")
    began = time.perf_counter()
    # An account not yet enrolled has no password: it is checked against one no password
    # matches, at the same cost, so timing does not tell it from any other.
    stored = account.password_hash or _unknown_hash(settings.pbkdf2_iterations)
    matched = password_matches(password, stored)
    hashing = time.perf_counter() - began
    if not matched:
        refuse("password")
    if not user.active:
        refuse("inactive")
    step = None
    needs_totp = account.totp_secret is not None or any(
        r in settings.totp_required_roles for r in user.roles
    )
    if needs_totp:
        secret = account.totp_secret
        step = None if secret is None else matching_totp_step(secret, str(code or ""), at)
        if step is None or step <= account.last_totp_step:
            refuse("totp")
    method = "password+totp" if needs_totp else "password"
    for attempt in range(SAVE_ATTEMPTS):
        try:
            session = _start_session(ledger, account, user, method, step)
            break
        except IntegrityError:
            # Someone's failure (say, an attacker's elsewhere) was recorded first: the owner
            # logs in on top of it rather than being refused for it.
            if attempt == SAVE_ATTEMPTS - 1:
                raise
            account = load(ledger, account.id, Account)
        except AccountStateError:
            refuse("totp")  # the code was spent meanwhile
    throttle.succeeded(key, address, now())
    return session


def recover(
    ledger: Ledger,
    settings: Settings,
    username: object,
    code: object,
    new_password: object,
    *,
    throttle: LoginThrottle,
    address: str,
) -> tuple[str, Session]:
    """An owner (or anyone holding recovery codes) sets a new password with one code.

    Never throttled and never locked out: a code has 100 random bits, and this is the way back
    in for an owner whose login an attacker has locked. A wrong code is recorded (with
    ``address``) but counts towards no lock. Success lifts the account-wide lock and makes
    ``address`` one the account knows. Every other session of the user ends.
    """
    token, session = _saved(
        lambda: _recover(ledger, settings, username, code, new_password, address)
    )
    throttle.succeeded(account_id(str(username)), address, now())
    return token, session


def _recover(
    ledger: Ledger,
    settings: Settings,
    username: object,
    code: object,
    new_password: object,
    address: str,
) -> tuple[str, Session]:
    account = _account(ledger, settings, username)
    user = load(ledger, account.user_id, User)
    password = check_password(new_password)
    if type(code) is not str or not user.active:
        _refuse(ledger, settings, account, "recovery_code", address=address)
    at = now()
    try:
        account.use_recovery_code(
            code_hash=recovery_code_hash(str(code)),
            password_hash=hash_password(password, settings.pbkdf2_iterations),
            at=at,
        )
    except AccountStateError:
        _refuse(ledger, settings, account, "recovery_code", address=address)
    user.end_sessions(reason="credentials recovered with a recovery code", at=at)
    return _start_session(ledger, account, user, "recovery_code", also=(user,))


def issue_recovery_codes(
    ledger: Ledger,
    settings: Settings,
    principal: Principal,
    password: object,
    *,
    throttle: LoginThrottle,
    address: str,
) -> list[str]:
    """New recovery codes for the caller (the caller checked who may:
    ``check_may_issue_recovery_codes``), returned once and kept only as their hashes; every
    earlier code stops working. The current password must be given again, so a stolen session
    token alone is not enough: a wrong one is a failed login, recorded under the session and
    throttled from ``address`` as a login is (``api/throttle.py``)."""
    account = account_of_user(ledger, principal.user_id)
    at = now()
    _confirm_password(ledger, settings, principal, account, password, throttle, address, at)
    codes = new_recovery_codes()
    account.issue_recovery_codes(code_hashes=[recovery_code_hash(c) for c in codes], at=at)
    with principal.acting():
        ledger.save(account)
    return codes


def approve_recovery(settings: Settings, account: Account, by: UUID) -> tuple[str, datetime]:
    """Approve the recovery of ``account`` (unsaved; the caller checked who may): a one-time
    code, returned once and kept only as its hash, and when it expires."""
    at = now()
    code = new_one_time_code()
    expires_at = at + settings.recovery_approval_lifetime
    account.approve_recovery(
        code_hash=recovery_code_hash(code), by=by, at=at, expires_at=expires_at
    )
    return code, expires_at


def recover_with_approval(
    ledger: Ledger,
    settings: Settings,
    username: object,
    code: object,
    new_password: object,
    *,
    throttle: LoginThrottle,
    address: str,
) -> tuple[str, Session, bytes]:
    """An owner sets a new password with a second owner's approval code, and gets a new TOTP
    secret (returned, for their app). Never throttled and never locked out, as a recovery code
    (and lifts the lock as it does); every other session of the user ends. The approval must
    still stand: both still active owners."""
    token, session, secret = _saved(
        lambda: _recover_with_approval(ledger, settings, username, code, new_password, address)
    )
    throttle.succeeded(account_id(str(username)), address, now())
    return token, session, secret


def _recover_with_approval(
    ledger: Ledger,
    settings: Settings,
    username: object,
    code: object,
    new_password: object,
    address: str,
) -> tuple[str, Session, bytes]:
    account = _account(ledger, settings, username)
    user = load(ledger, account.user_id, User)
    password_hash = hash_password(check_password(new_password), settings.pbkdf2_iterations)
    secret, at = new_totp_secret(), now()
    approval = account.recovery_approval
    try:
        if type(code) is not str or approval is None:
            raise AccountStateError(f"account {account.id}: no such unused recovery approval")
        check_approval_stands(load(ledger, approval.approved_by, User), user)
        account.use_recovery_approval(
            code_hash=recovery_code_hash(code),
            password_hash=password_hash,
            totp_secret=secret,
            at=at,
        )
    except AccountStateError:
        # Wrong, spent, expired or voided: one answer for all, and a failure on the record.
        _refuse(ledger, settings, account, "recovery_approval", address=address)
    user.end_sessions(reason="credentials recovered with another owner's approval", at=at)
    token, session = _start_session(ledger, account, user, "recovery_approval", also=(user,))
    return token, session, secret


def enroll(
    ledger: Ledger,
    settings: Settings,
    username: object,
    code: object,
    new_password: object,
    *,
    address: str | None = None,
) -> tuple[Account, bytes | None]:
    """Spend an enrollment code: the user's own new password and, if the account holds no
    authenticator, a new TOTP secret (returned, for them alone). Starts no session: whoever
    holds the code still needs the account's authenticator to log in, so an administrator who
    spends a code meant for someone else gains nothing but a password they cannot use. Every
    session of the user ends.

    A wrong, spent, voided or expired code, or a deactivated user, is a failed login, recorded
    like any other (with ``address``) but never throttled: a code has 100 random bits, as a
    recovery code does. The event names who issued the code; its actor is nobody, since
    whoever holds a code is not known to be its user."""
    return _saved(lambda: _enroll(ledger, settings, username, code, new_password, address))


def _enroll(
    ledger: Ledger,
    settings: Settings,
    username: object,
    code: object,
    new_password: object,
    address: str | None,
) -> tuple[Account, bytes | None]:
    account = _account(ledger, settings, username)
    user = load(ledger, account.user_id, User)
    password_hash = hash_password(check_password(new_password), settings.pbkdf2_iterations)
    at = now()
    secret = new_totp_secret() if account.totp_secret is None else None
    try:
        if type(code) is not str or not user.active:
            raise AccountStateError(f"account {account.id}: no such unused enrollment code")
        account.enroll(
            code_hash=recovery_code_hash(code),
            password_hash=password_hash,
            totp_secret=secret,
            at=at,
        )
    except AccountStateError:
        _refuse(ledger, settings, account, "enrollment_code", address=address)
    user.end_sessions(reason="credentials set with an enrollment code", at=at)
    with acting(None):
        ledger.save(account, user)
    return account, secret


def change_own_password(
    ledger: Ledger,
    settings: Settings,
    principal: Principal,
    current: object,
    new: object,
    *,
    throttle: LoginThrottle,
    address: str,
) -> None:
    """The caller's own new password, given their current one: a wrong one is a failed login,
    recorded under the session and throttled from ``address`` as a login is (as at
    ``issue_recovery_codes``). Every other session of the user ends; the one asking stays."""
    account = account_of_user(ledger, principal.user_id)
    user = load(ledger, principal.user_id, User)
    password_hash = hash_password(check_password(new), settings.pbkdf2_iterations)
    at = now()
    _confirm_password(ledger, settings, principal, account, current, throttle, address, at)
    account.change_password(password_hash=password_hash, by=principal.user_id, at=at)
    user.end_other_sessions(keep=principal.session_id, reason="password changed by the user", at=at)
    with principal.acting():
        ledger.save(account, user)


def _confirm_password(
    ledger: Ledger,
    settings: Settings,
    principal: Principal,
    account: Account,
    password: object,
    throttle: LoginThrottle,
    address: str,
    at: datetime,
) -> None:
    """The caller's current password, given again to confirm a step in a session: a wrong one
    is a failed login, recorded under the session and throttled from ``address`` as a login is,
    so a stolen session token alone cannot take the step."""
    admission = throttle.admit(account.id, address, at)
    if type(password) is not str or not password_matches(password, account.password_hash):
        _refuse(
            ledger,
            settings,
            account,
            "password",
            within=principal,
            address=address,
            admission=admission,
        )
    throttle.succeeded(account.id, address, at)


def _saved(attempt: Callable[[], T]) -> T:
    """``attempt()``, made again from a fresh read while a concurrent change to the same
    account or user (say, an attacker's failed login) is saved first: nothing of a losing
    attempt was saved, and a recovery must not fail for someone else's noise."""
    for n in range(SAVE_ATTEMPTS):
        try:
            return attempt()
        except IntegrityError:
            if n == SAVE_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def authenticate(
    ledger: Ledger,
    settings: Settings,
    token: str,
    last_seen: LastSeen,
    *,
    address: str | None = None,
    budget: RefusalBudget | None = None,
) -> Principal:
    """The principal behind ``token``, checked against the ledger now; else ``Unauthenticated``,
    recorded first (``api/refused_requests.py``): under the session's user when the token
    names a known session, else by ``address`` within ``budget``."""
    at = now()
    session_id = session_id_of(token)
    if session_id is None:
        refuse_token(ledger, budget, address, "malformed-token", at)
        raise Unauthenticated("no valid session")
    try:
        session, user = _session_and_user(ledger, session_id)
    except AggregateNotFoundError:
        refuse_token(ledger, budget, address, "unknown-session", at)
        raise Unauthenticated("no valid session") from None
    if not hmac.compare_digest(session.token_hash, sha256_hex(token)):
        refuse_session(ledger, session, "wrong-token", at)
        raise Unauthenticated("no valid session")
    if not session.is_open:
        refuse_session(ledger, session, session.end_reason or "ended", at)
        raise Unauthenticated("no valid session")
    key = str(session_id)
    seen = last_seen.get(key, session.started_at.timestamp())
    expired = (
        "idle"
        if at.timestamp() - seen > settings.idle_timeout.total_seconds()
        else "expired"
        if at - session.started_at > settings.session_lifetime
        else None
    )
    if not user.session_is_current(session.started_at, session.id):
        expired = "revoked"
    if expired is not None:
        last_seen.pop(key, None)
        refuse_session(ledger, session, expired, at, end=True)
        raise Unauthenticated("no valid session")
    last_seen[key] = at.timestamp()
    emergencies = tuple(
        (patient, access_id, until)
        # the hot cache never changes a session it handed out (events/hot.py)
        for patient, (access_id, until) in getattr(session, "emergencies", {}).items()
    )
    return Principal(
        user_id=user.id, roles=tuple(user.roles), session_id=session.id, emergencies=emergencies
    )


def _session_and_user(ledger: Ledger, session_id: UUID) -> tuple[Session, User]:
    """The session and its user as the store holds them now: both brought up to date in one
    round trip once the session is known (a session's user never changes)."""
    known = ledger.hot.cached(session_id)
    if not isinstance(known, Session):
        known = load(ledger, session_id, Session, hot=True)
    session, user = ledger.hot.get(session_id, known.user_id)
    if not isinstance(session, Session) or not isinstance(user, User):
        raise AggregateNotFoundError(f"no session {session_id}")
    return session, user


def _end(ledger: Ledger, session: Session, reason: str, at: datetime) -> None:
    """End the session. A concurrent change to it (a refused request recorded on it, say a
    forged token's) is read and ended on top of; one already ended is over either way."""
    session = copy.deepcopy(session)  # it may be the hot cache's own object
    for attempt in range(SAVE_ATTEMPTS):
        try:
            session.end(reason=reason, at=at)
            with acting(user_subject(session.user_id), str(session.id)):
                ledger.save(session)
            return
        except AccountStateError:
            return  # ended by a concurrent request: it is over either way
        except IntegrityError:
            if attempt == SAVE_ATTEMPTS - 1:
                raise
            session = load(ledger, session.id, Session)


def log_out(ledger: Ledger, principal: Principal, last_seen: LastSeen) -> None:
    session = load(ledger, principal.session_id, Session)
    last_seen.pop(str(session.id), None)
    _end(ledger, session, "logout", now())
