"""What the API is configured with: where the ledger is, and the security knobs.

Everything comes from the environment (``Settings.from_env``); tests build ``Settings`` directly,
with a low PBKDF2 iteration count so that hashing a password does not dominate the suite.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

from api.limits import Limits
from domain.errors import InvalidEntry
from domain.json_depth import MAX_DEPTH
from domain.throttle import ThrottlePolicy
from domain.users import ROLES
from events.config import ConfigError, StoreConfig

# OWASP Password Storage Cheat Sheet: PBKDF2-HMAC-SHA256, 600,000 iterations.
OWASP_PBKDF2_ITERATIONS = 600_000


@dataclass(frozen=True)
class Settings:
    store: StoreConfig
    pbkdf2_iterations: int = OWASP_PBKDF2_ITERATIONS
    idle_timeout: timedelta = timedelta(minutes=15)
    session_lifetime: timedelta = timedelta(hours=12)
    # Growing waits per account and client address; the account-wide limit is fixed at 100
    # (domain/throttle.py). Addresses (or networks) of reverse proxies whose X-Forwarded-For
    # is believed (api/throttle.py); none by default: the TCP peer is the client.
    login_throttle: ThrottlePolicy = field(default_factory=ThrottlePolicy)
    trusted_proxies: tuple[str, ...] = ()
    # How long a second owner's approval of an owner's recovery may be spent: long enough to
    # hand the code over in person, short enough that a lost note is soon worthless.
    recovery_approval_lifetime: timedelta = timedelta(minutes=15)
    # Request bounds (api/limits.py): bodies, uploads (documents and imports), header fields,
    # JSON nesting. An ordinary scanned PDF or a day's lab feed is a few megabytes.
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 50 * 1_048_576
    max_header_bytes: int = 16_384
    max_json_depth: int = MAX_DEPTH
    background: bool = True  # keep the views caught up and sign the log on a timer
    # Everyone who sees PHI or administers logs in with a TOTP code: every role.
    totp_required_roles: tuple[str, ...] = field(default=ROLES)
    # How long an enrollment code (a new user's, or a reset's) may be spent: a working day and
    # night to hand it over, after which the administrator issues a new one.
    enrollment_code_lifetime: timedelta = timedelta(hours=24)
    # How long a disposal proposal waits for its second person (legal_hold/disposal_approvals.py).
    disposal_approval_lifetime: timedelta = timedelta(hours=72)
    # How long an Idempotency-Key is kept (docs/IDEMPOTENCY.md): longer than any client's
    # retries (api/client.py gives up within a minute), and a working day for a person's.
    idempotency_key_lifetime: timedelta = timedelta(hours=24)
    # How often the server sends the hold notices, reminders and escalations due
    # (api/notice_loop.py). Reminders fall due by the day, a new hold's notice at once: a
    # minute keeps a notice prompt, and a round that finds nothing due reads only the holds.
    notice_every: timedelta = timedelta(seconds=60)
    # Whether anyone may read the signed checkpoint and the tiles of hashes (docs/TILES.md):
    # a practice that publishes its log lets any witness or member of the public follow it;
    # otherwise they are for auditors (and owners). They hold hashes only, never records.
    publish_log: bool = False
    # The server's address as its clients reach it (``https://ehr.example.org/``), for the
    # absolute URLs of export manifests and Bulk Data status: needed behind a reverse proxy,
    # which hides it; unset, each request's own base URL is used.
    public_base_url: str | None = None
    # Where anyone may read the EHI export's format (ONC 170.315(b)(10)(ii)(B)); written into
    # every export's manifest and README. Unset: the copy this server publishes without login,
    # ``<base URL>/docs/EHI_EXPORT.md`` (api/routers/bulk_data.py).
    export_docs_url: str | None = None

    @property
    def limits(self) -> Limits:
        return Limits(
            self.max_body_bytes, self.max_upload_bytes, self.max_header_bytes, self.max_json_depth
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        iterations = _int(env, "CHARTLEDGER_PBKDF2_ITERATIONS", OWASP_PBKDF2_ITERATIONS)
        idle = _int(env, "CHARTLEDGER_IDLE_TIMEOUT_SECONDS", 15 * 60)
        enrollment = _int(env, "CHARTLEDGER_ENROLLMENT_CODE_LIFETIME_SECONDS", 24 * 3600)
        approval = _int(env, "CHARTLEDGER_DISPOSAL_APPROVAL_HOURS", 72)
        keys = _int(env, "CHARTLEDGER_IDEMPOTENCY_KEY_LIFETIME_SECONDS", 24 * 3600)
        notices = _int(env, "CHARTLEDGER_NOTICE_EVERY_SECONDS", 60)
        return cls(
            store=StoreConfig.from_env(env),
            pbkdf2_iterations=iterations,
            idle_timeout=timedelta(seconds=idle),
            enrollment_code_lifetime=timedelta(seconds=enrollment),
            disposal_approval_lifetime=timedelta(hours=approval),
            idempotency_key_lifetime=timedelta(seconds=keys),
            notice_every=timedelta(seconds=notices),
            login_throttle=_throttle(env),
            trusted_proxies=_networks(env, "CHARTLEDGER_TRUSTED_PROXIES"),
            max_body_bytes=_int(env, "CHARTLEDGER_MAX_BODY_BYTES", cls.max_body_bytes),
            max_upload_bytes=_int(env, "CHARTLEDGER_MAX_UPLOAD_BYTES", cls.max_upload_bytes),
            max_header_bytes=_int(env, "CHARTLEDGER_MAX_HEADER_BYTES", cls.max_header_bytes),
            max_json_depth=_int(env, "CHARTLEDGER_MAX_JSON_DEPTH", cls.max_json_depth),
            publish_log=_flag(env, "CHARTLEDGER_PUBLISH_LOG"),
            public_base_url=public_url(env, "CHARTLEDGER_PUBLIC_BASE_URL"),
            export_docs_url=public_url(env, "CHARTLEDGER_EXPORT_DOCS_URL"),
        )


def _throttle(env: Mapping[str, str]) -> ThrottlePolicy:
    default = ThrottlePolicy()
    try:
        return ThrottlePolicy(
            failures_before_wait=_int(
                env, "CHARTLEDGER_LOGIN_FAILURES_BEFORE_WAIT", default.failures_before_wait
            ),
            first_delay=_seconds(env, "CHARTLEDGER_LOGIN_FIRST_DELAY_SECONDS", default.first_delay),
            max_delay=_seconds(env, "CHARTLEDGER_LOGIN_MAX_DELAY_SECONDS", default.max_delay),
            forget_after=_seconds(
                env, "CHARTLEDGER_LOGIN_FORGET_AFTER_SECONDS", default.forget_after
            ),
        )
    except InvalidEntry as e:
        raise ConfigError(f"login throttle: {e}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    """An on/off setting: 1, true, yes or on; 0, false, no, off or unset."""
    value = (env.get(name) or "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"", "0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true or false)")


def public_url(env: Mapping[str, str], name: str) -> str | None:
    """An absolute http(s) URL, or None when unset; a base URL gets its trailing slash."""
    raw = (env.get(name) or "").strip()
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an absolute http(s) URL without query or fragment")
    return raw


def _seconds(env: Mapping[str, str], name: str, default: timedelta) -> timedelta:
    return timedelta(seconds=_int(env, name, int(default.total_seconds())))


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks (``10.0.0.1``, ``10.0.0.0/8``, ``::1``)."""
    found = []
    for part in (env.get(name) or "").split(","):
        if part.strip():
            try:
                found.append(str(ipaddress.ip_network(part.strip(), strict=False)))
            except ValueError:
                raise ConfigError(f"{name} must list IP addresses or networks") from None
    return tuple(found)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1")
    return value
