"""What the API is configured with: where the ledger is, and the security knobs.

Everything comes from the environment (``Settings.from_env``); tests build ``Settings`` directly,
with a low PBKDF2 iteration count so that hashing a password does not dominate the suite.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

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
    max_failures: int = 5  # consecutive failed logins before a lockout
    lockout: timedelta = timedelta(minutes=15)
    # How long a second owner's approval of an owner's recovery may be spent: long enough to
    # hand the code over in person, short enough that a lost note is soon worthless.
    recovery_approval_lifetime: timedelta = timedelta(minutes=15)
    max_body_bytes: int = 1_048_576
    background: bool = True  # keep the views caught up and sign the log on a timer
    # Everyone who sees PHI or administers logs in with a TOTP code: every role.
    totp_required_roles: tuple[str, ...] = field(default=ROLES)
    # How long an enrollment code (a new user's, or a reset's) may be spent: a working day and
    # night to hand it over, after which the administrator issues a new one.
    enrollment_code_lifetime: timedelta = timedelta(hours=24)
    # How long a disposal proposal waits for its second person (legal_hold/disposal_approvals.py).
    disposal_approval_lifetime: timedelta = timedelta(hours=72)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        iterations = _int(env, "CHARTLEDGER_PBKDF2_ITERATIONS", OWASP_PBKDF2_ITERATIONS)
        idle = _int(env, "CHARTLEDGER_IDLE_TIMEOUT_SECONDS", 15 * 60)
        enrollment = _int(env, "CHARTLEDGER_ENROLLMENT_CODE_LIFETIME_SECONDS", 24 * 3600)
        approval = _int(env, "CHARTLEDGER_DISPOSAL_APPROVAL_HOURS", 72)
        return cls(
            store=StoreConfig.from_env(env),
            pbkdf2_iterations=iterations,
            idle_timeout=timedelta(seconds=idle),
            enrollment_code_lifetime=timedelta(seconds=enrollment),
            disposal_approval_lifetime=timedelta(hours=approval),
        )


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
