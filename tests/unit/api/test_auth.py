"""Password hashes, TOTP codes (against RFC 6238 appendix B), tokens, recovery codes and
recovery approvals."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from api import auth
from api.settings import OWASP_PBKDF2_ITERATIONS, Settings
from domain.credentials import Account
from domain.errors import InvalidEntry
from domain.users import ROLES
from events.config import StoreConfig

SHA1_SEED = b"12345678901234567890"
SHA256_SEED = b"12345678901234567890123456789012"
SHA512_SEED = b"1234567890" * 6 + b"1234"
# RFC 6238 appendix B: (time, SHA-1, SHA-256, SHA-512), 8 digits, 30-second steps.
RFC6238_VECTORS = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("at", "sha1", "sha256", "sha512"), RFC6238_VECTORS)
def test_totp_matches_rfc_6238_appendix_b(at: int, sha1: str, sha256: str, sha512: str) -> None:
    assert auth.totp(SHA1_SEED, at, digits=8, algorithm="sha1") == sha1
    assert auth.totp(SHA256_SEED, at, digits=8, algorithm="sha256") == sha256
    assert auth.totp(SHA512_SEED, at, digits=8, algorithm="sha512") == sha512


def test_a_totp_code_matches_its_step_and_one_step_of_drift_only() -> None:
    secret = auth.new_totp_secret()
    at = datetime(2026, 1, 5, 9, 30, 15, tzinfo=UTC)
    step = int(at.timestamp()) // 30
    for drift in (-1, 0, 1):
        code = auth.hotp(secret, step + drift)
        assert auth.matching_totp_step(secret, code, at) == step + drift
    assert auth.matching_totp_step(secret, auth.hotp(secret, step + 2), at) is None
    assert auth.matching_totp_step(secret, "12345", at) is None
    assert auth.matching_totp_step(secret, "abcdef", at) is None


def test_the_totp_secret_round_trips_through_base32_and_the_uri_names_it() -> None:
    secret = auth.new_totp_secret()
    assert auth.from_base32(auth.base32(secret)) == secret
    assert f"secret={auth.base32(secret)}" in auth.totp_uri(secret, "alice")


def test_a_password_hash_is_pbkdf2_sha256_salted_and_names_its_iterations() -> None:
    first = auth.hash_password("correct horse battery", 1_000)
    second = auth.hash_password("correct horse battery", 1_000)
    assert first.startswith("pbkdf2_sha256$1000$") and first != second
    assert auth.password_matches("correct horse battery", first)
    assert not auth.password_matches("correct horse batterY", first)
    assert not auth.password_matches("anything", "not a hash")


def test_the_default_iteration_count_is_owasps() -> None:
    assert OWASP_PBKDF2_ITERATIONS == 600_000
    assert Settings(store=StoreConfig(home=__import__("pathlib").Path("x"))).pbkdf2_iterations == (
        600_000
    )
    env = {"CHARTLEDGER_PBKDF2_ITERATIONS": "1000", "CHARTLEDGER_HOME": "x"}
    assert Settings.from_env(env).pbkdf2_iterations == 1_000


@pytest.mark.parametrize("password", ["short", "", None, "x" * 1025])
def test_a_password_outside_12_to_1024_characters_is_refused(password: object) -> None:
    with pytest.raises(InvalidEntry, match="password must be 12 to 1024 characters"):
        auth.check_password(password)


def test_a_token_names_its_session_and_only_its_hash_is_kept() -> None:
    session_id = uuid4()
    token = auth.new_token(session_id)
    assert auth.session_id_of(token) == session_id
    assert len(auth.sha256_hex(token)) == 64 and session_id.hex not in auth.sha256_hex(token)
    for bad in ("", "clt_", "clt_nothex.abc", f"clt_{session_id.hex}", "Bearer x"):
        assert auth.session_id_of(bad) is None


def test_recovery_codes_are_ten_distinct_codes_hashed_forgivingly() -> None:
    codes = auth.new_recovery_codes()
    assert len(set(codes)) == 10 and all(len(c) == 23 for c in codes)
    code = codes[0]
    assert auth.recovery_code_hash(code.lower()) == auth.recovery_code_hash(f" {code} ")


def test_an_approval_is_a_fresh_code_kept_as_its_hash_expiring_after_the_setting() -> None:
    settings = Settings(store=StoreConfig(home=Path("x")))
    assert settings.recovery_approval_lifetime == timedelta(minutes=15)
    account = Account.open(
        username="otto", user_id=uuid4(), password_hash="h", at=datetime.now(UTC)
    )
    code, expires_at = auth.approve_recovery(settings, account, by=uuid4())
    approval = account.recovery_approval
    assert approval is not None and approval.expires_at == expires_at
    assert approval.code_hash == auth.recovery_code_hash(code) and code not in approval.code_hash
    assert len(code) == 23 and code not in auth.new_recovery_codes()
    at = next(e.at for e in account.collect_events() if type(e).__name__ == "RecoveryApproved")
    assert expires_at - at == settings.recovery_approval_lifetime


def test_every_role_needs_a_totp_code_by_default() -> None:
    settings = Settings(store=StoreConfig(home=Path("x")))
    assert set(settings.totp_required_roles) == set(ROLES)


def test_a_new_user_gets_an_enrollment_code_kept_only_as_its_hash() -> None:
    settings = Settings(store=StoreConfig(home=Path("x")), pbkdf2_iterations=1_000)
    admin = uuid4()
    made = auth.new_pending_account(
        settings, username="casey", name="Dr. Casey", role="clinician", by=admin
    )
    assert re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}", made.code)
    events = made.account.collect_events()
    assert [type(e).__name__ for e in events] == ["Opened", "EnrollmentCodeIssued"]
    opened, issued = events
    assert opened.password_hash is None and made.account.totp_secret is None  # type: ignore[attr-defined]
    assert issued.code_hash == auth.recovery_code_hash(made.code)  # type: ignore[attr-defined]
    assert issued.issued_by == admin  # type: ignore[attr-defined]
    assert made.code not in repr([vars(e) for e in events])
    assert made.expires_at - issued.at == settings.enrollment_code_lifetime  # type: ignore[attr-defined]
    assert settings.enrollment_code_lifetime == timedelta(hours=24)
    assert not auth.password_matches("anything-at-all", made.account.password_hash)
