"""The throttle's shared file (api/throttle.py) and where a client's address comes from: counts
seen by every process that opens the file, attempts counted before they are checked (so a burst
cannot slip through), and X-Forwarded-For believed only from a trusted proxy."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from starlette.requests import Request

from api.errors import TooManyAttempts
from api.settings import Settings
from api.throttle import LoginThrottle, address_key, client_address
from domain.errors import InvalidEntry
from domain.throttle import ACCOUNT_LOCK_FAILURES, ThrottlePolicy
from events.config import ConfigError

AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
POLICY = ThrottlePolicy()


def throttle(tmp_path: Path) -> LoginThrottle:
    return LoginThrottle(tmp_path / "login-throttle", POLICY)


def test_the_file_is_the_processes_shared_count(tmp_path: Path) -> None:
    """Two openings of one file (two server processes) count the same pair's attempts."""
    one, other, account = throttle(tmp_path), throttle(tmp_path), uuid4()
    for n in range(POLICY.failures_before_wait):
        (one if n % 2 else other).admit(account, "203.0.113.9", AT)
    for side in (one, other):
        with pytest.raises(TooManyAttempts) as waits:
            side.admit(account, "203.0.113.9", AT + timedelta(seconds=1))
        assert waits.value.retry_after == POLICY.first_delay.total_seconds() - 1
    other.admit(account, "198.51.100.1", AT)  # another address: no wait
    one.succeeded(account, "203.0.113.9", AT)
    other.admit(account, "203.0.113.9", AT)  # a success from the pair clears it
    assert (tmp_path / "login-throttle").stat().st_mode & 0o777 == 0o600
    one.close()
    one.admit(account, "192.0.2.1", AT)  # closed, it opens again when used
    one.close()
    other.close()


def test_a_burst_of_concurrent_attempts_gets_only_the_free_ones(tmp_path: Path) -> None:
    shared, account = throttle(tmp_path), uuid4()
    admitted, refused = [], []

    def attempt() -> None:
        try:
            admitted.append(shared.admit(account, "203.0.113.9", AT))
        except TooManyAttempts:
            refused.append(1)

    threads = [threading.Thread(target=attempt) for _ in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (len(admitted), len(refused)) == (POLICY.failures_before_wait, 40 - len(admitted))


def test_a_hundred_failures_in_a_row_lock_new_addresses_until_a_success(tmp_path: Path) -> None:
    shared, account = throttle(tmp_path), uuid4()
    shared.succeeded(account, "198.51.100.1", AT)  # the owner's workstation
    for n in range(ACCOUNT_LOCK_FAILURES):
        last = shared.admit(account, f"10.0.{n}.1", AT)
    assert last.refusal(AT) is not None  # the hundredth failure says so
    with pytest.raises(TooManyAttempts):
        shared.admit(account, "192.0.2.77", AT)
    known = shared.admit(account, "198.51.100.1", AT)  # the owner's address still may try
    shared.succeeded(account, "198.51.100.1", AT)  # ...and getting in lifts the lock
    assert known.account_failures == ACCOUNT_LOCK_FAILURES + 1
    shared.admit(account, "192.0.2.77", AT)


def test_old_failures_are_forgotten_but_a_lock_is_not(tmp_path: Path) -> None:
    shared, account = throttle(tmp_path), uuid4()
    for n in range(ACCOUNT_LOCK_FAILURES):
        shared.admit(account, f"10.0.{n}.1", AT)
    much_later = AT + POLICY.forget_after * 2
    with pytest.raises(TooManyAttempts):
        shared.admit(account, "10.0.0.1", much_later)
    shared.lift(account)
    shared.admit(account, "10.0.0.1", much_later)  # and its own old failure is forgotten


def scope(peer: str | None, forwarded: str | None = None) -> Request:
    headers = [] if forwarded is None else [(b"x-forwarded-for", forwarded.encode())]
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/auth/login",
            "headers": headers,
            "client": None if peer is None else (peer, 40000),
        }
    )


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() -> None:
    spoofed = scope("203.0.113.9", "198.51.100.1")
    assert client_address(spoofed, ()) == "203.0.113.9"
    assert client_address(spoofed, ("10.0.0.0/8",)) == "203.0.113.9"
    proxied = scope("10.0.0.2", "192.0.2.1, 198.51.100.1, 10.0.0.3")
    assert client_address(proxied, ()) == "10.0.0.2"
    # The nearest hop the trusted proxies did not add: what the client sent before is theirs.
    assert client_address(proxied, ("10.0.0.0/8",)) == "198.51.100.1"
    assert client_address(scope("10.0.0.2", "not-an-address"), ("10.0.0.0/8",)) == "10.0.0.2"
    assert client_address(scope("10.0.0.2"), ("10.0.0.0/8",)) == "10.0.0.2"
    assert client_address(scope(None), ()) == "unknown"


def test_an_ipv6_client_is_throttled_by_its_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:2::1") != address_key("2001:db8:1:3::1")
    assert address_key("::ffff:203.0.113.9") == "203.0.113.9" == address_key("203.0.113.9")
    assert address_key("testclient") == "testclient"


def test_the_settings_name_the_throttle_and_the_trusted_proxies(tmp_path: Path) -> None:
    env = {
        "CHARTLEDGER_HOME": str(tmp_path),
        "CHARTLEDGER_TRUSTED_PROXIES": "10.0.0.1, fd00::/8",
        "CHARTLEDGER_LOGIN_FAILURES_BEFORE_WAIT": "3",
        "CHARTLEDGER_LOGIN_FIRST_DELAY_SECONDS": "10",
        "CHARTLEDGER_LOGIN_MAX_DELAY_SECONDS": "600",
    }
    settings = Settings.from_env(env)
    assert settings.trusted_proxies == ("10.0.0.1/32", "fd00::/8")
    assert settings.login_throttle == ThrottlePolicy(
        3, timedelta(seconds=10), timedelta(minutes=10), timedelta(days=1)
    )
    assert Settings.from_env({"CHARTLEDGER_HOME": str(tmp_path)}).trusted_proxies == ()
    for name, value in [
        ("CHARTLEDGER_TRUSTED_PROXIES", "proxy.example"),
        ("CHARTLEDGER_LOGIN_FIRST_DELAY_SECONDS", "7200"),  # more than the longest wait
        ("CHARTLEDGER_LOGIN_MAX_DELAY_SECONDS", "86400"),  # not less than forgetting
    ]:
        with pytest.raises(ConfigError):
            Settings.from_env({"CHARTLEDGER_HOME": str(tmp_path), name: value})
    with pytest.raises(InvalidEntry):
        ThrottlePolicy(failures_before_wait=0)
