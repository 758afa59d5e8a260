"""Attack 6 of issue 15, replayed over HTTP: anyone could keep an owner out. Five wrong
passwords from anywhere locked the account for 900 s, the right password and a valid code then
got 429, one more wrong attempt after the lock locked it again, and unknown usernames answered
at once. Now an attacker's failures make *their own address* wait, longer each time; the owner
from another address walks in; a hundred failures in a row from many addresses lock the account
only to addresses it never logged in from, never against a recovery code, and the recovery
lifts the lock. An unknown username gets the very same answers.

(The same attack against a real ``chartledger serve`` from 127.0.0.2, and the login timings,
are in ``test_login_throttle_server.py``.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from api import auth
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    code_now,
    events_of_type,
    lock_out,
)

ATTACKER, OWNER_DESK, NEW_LAPTOP = "203.0.113.66", "198.51.100.10", "198.51.100.77"
FAILED = "domain.credentials:Account.LoginFailed"
LOCKED = "domain.credentials:Account.LockedOut"


def refused_code(practice: Practice) -> str:
    """The owner's code for now, for an attempt that must be refused before it is checked (so
    it is not spent, and ``code_now`` may still hand it out)."""
    return auth.totp(practice.totp_secret, int(auth.now().timestamp()))


class Clock:
    """``auth.now``, moved on a TOTP step after each code it hands out: one code works once, so
    a test with more logins than two steps' codes would otherwise have to wait for the next."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shift, real = timedelta(0), auth.now
        monkeypatch.setattr(auth, "now", lambda: real() + self.shift)

    def code(self, practice: Practice) -> str:
        code = auth.totp(practice.totp_secret, int(auth.now().timestamp()))
        self.shift += timedelta(seconds=auth.TOTP_STEP)
        return code


def try_login(
    practice: Practice, address: str, username: str, password: str, code: str | None = None
) -> httpx.Response:
    body = {"username": username, "password": password, "totp_code": code}
    return practice.http_client(address).post("/auth/login", json=body)


def test_an_attacker_hammering_the_owners_login_slows_only_their_own_address(
    practice: Practice,
) -> None:
    answers = [try_login(practice, ATTACKER, OWNER, "guessed-password-1", "000000")]
    answers += [
        try_login(practice, ATTACKER, OWNER, f"guess-{n}-password", "123456") for n in range(4)
    ]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    assert answers[-1].headers["retry-after"] == "30"
    assert answers[-1].json()["type"].endswith("too-many-attempts")

    # While it waits, the attacker's tries cost nothing and write nothing, the right password
    # and code included.
    leaves = practice.leaves()
    for n in range(25):
        assert (
            try_login(practice, ATTACKER, OWNER, f"more-{n}-guesses", "000000").status_code == 429
        )
    right = try_login(practice, ATTACKER, OWNER, OWNER_PASSWORD, refused_code(practice))
    assert right.status_code == 429
    assert practice.leaves() == leaves

    # The owner, from her own desk, is never refused; nor is anyone else from theirs.
    for _ in range(2):
        owner = try_login(
            practice, OWNER_DESK, OWNER, OWNER_PASSWORD, code_now(practice.totp_secret)
        )
        assert owner.status_code == 200, owner.json()
    # Her getting in does not let the attacker's address off its wait.
    assert try_login(practice, ATTACKER, OWNER, "one-more-guess-1", "000000").status_code == 429

    failures = events_of_type(practice, FAILED)
    assert [(f.reason, f.address) for f in failures] == [("password", ATTACKER)] * 5  # type: ignore[attr-defined]
    assert events_of_type(practice, LOCKED) == []


def test_the_wait_doubles_with_each_failure_and_ends(
    practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the wait, one more wrong attempt no longer locks anyone out: it makes this address
    wait twice as long. The right password and code, once the wait is over, get in and clear it."""
    started, shifted = auth.now(), timedelta(0)
    monkeypatch.setattr(auth, "now", lambda: started + shifted)
    for n in range(4):
        assert try_login(practice, ATTACKER, OWNER, f"guess-{n}-password").status_code == 401
    waits = []
    for n in range(4):
        wrong = try_login(practice, ATTACKER, OWNER, f"wrong-{n}-password")
        assert wrong.status_code == 429
        waits.append(int(wrong.headers["retry-after"]))
        shifted += timedelta(seconds=waits[-1] - 1)
        assert try_login(practice, ATTACKER, OWNER, "early-password-1").status_code == 429
        shifted += timedelta(seconds=1)
    assert waits == [30, 60, 120, 240]

    code = auth.totp(practice.totp_secret, int((started + shifted).timestamp()))
    assert try_login(practice, ATTACKER, OWNER, OWNER_PASSWORD, code).status_code == 200
    assert try_login(practice, ATTACKER, OWNER, "typo-password-1").status_code == 401


def test_an_unknown_username_is_answered_as_a_known_one(practice: Practice) -> None:
    def story(username: str, address: str) -> list[tuple[int, str | None, dict[str, Any]]]:
        answers = [try_login(practice, address, username, f"guess-{n}-password") for n in range(8)]
        return [(a.status_code, a.headers.get("retry-after"), a.json()) for a in answers]

    known, unknown = story(OWNER, "192.0.2.10"), story("oliver", "192.0.2.11")
    assert known == unknown
    assert [status for status, _, _ in known] == [401] * 4 + [429] * 4


def test_a_hundred_failures_lock_the_account_only_to_addresses_it_never_logged_in_from(
    practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(monkeypatch)
    desk = try_login(practice, OWNER_DESK, OWNER, OWNER_PASSWORD, clock.code(practice))
    assert desk.status_code == 200
    lock_out(practice, OWNER)  # a hundred wrong logins from twenty addresses
    (locked,) = events_of_type(practice, LOCKED)
    assert (locked.failures, locked.until) == (100, None)  # type: ignore[attr-defined]

    # From an address the account never logged in from: refused, even with the right password.
    laptop = try_login(practice, NEW_LAPTOP, OWNER, OWNER_PASSWORD, refused_code(practice))
    assert laptop.status_code == 429
    # From her desk, where she logged in before: in, and that lifts the lock.
    desk = try_login(practice, OWNER_DESK, OWNER, OWNER_PASSWORD, clock.code(practice))
    assert desk.status_code == 200
    laptop = try_login(practice, NEW_LAPTOP, OWNER, OWNER_PASSWORD, clock.code(practice))
    assert laptop.status_code == 200


def test_a_recovery_code_works_through_the_lock_and_lifts_it(practice: Practice) -> None:
    lock_out(practice, OWNER)
    assert (
        try_login(
            practice, NEW_LAPTOP, OWNER, OWNER_PASSWORD, code_now(practice.totp_secret)
        ).status_code
        == 429
    )

    # Wrong recovery codes are recorded but never throttled, and never count towards the lock.
    attacker = practice.http_client(ATTACKER)
    for n in range(12):
        answer = attacker.post(
            "/auth/recover",
            json={
                "username": OWNER,
                "recovery_code": f"AAAAA-AAAAA-AAAAA-AAA{n:02d}",
                "new_password": "attacker-chosen-pw",
            },
        )
        assert answer.status_code == 401
    reasons = [f.reason for f in events_of_type(practice, FAILED)]  # type: ignore[attr-defined]
    assert reasons.count("recovery_code") == 12

    owner = practice.client(NEW_LAPTOP)
    owner.recover(OWNER, practice.recovery_codes[0], "owner-password-2")
    assert str(owner.me().user_id) == practice.owner_id
    elsewhere = try_login(
        practice, "198.51.100.99", OWNER, "owner-password-2", code_now(practice.totp_secret)
    )
    assert elsewhere.status_code == 200


def test_the_client_address_is_the_peer_and_x_forwarded_for_changes_nothing(
    practice: Practice,
) -> None:
    """No proxy is trusted unless CHARTLEDGER_TRUSTED_PROXIES names it: an attacker claiming a
    new address in every request is still throttled by the one they call from."""

    def forged(n: int) -> dict[str, str]:
        return {"x-forwarded-for": f"198.51.100.{n}"}

    statuses = [
        practice.http_client(ATTACKER)
        .post(
            "/auth/login",
            json={"username": OWNER, "password": f"guess-{n}-password"},
            headers=forged(n),
        )
        .status_code
        for n in range(8)
    ]
    assert statuses == [401] * 4 + [429] * 4
    addresses = {f.address for f in events_of_type(practice, FAILED)}  # type: ignore[attr-defined]
    assert addresses == {ATTACKER}


def test_a_reset_and_enrollment_lift_the_lock_an_attacker_put_on_a_clinician(
    practice: Practice,
) -> None:
    """An attacker's hundred failures lock Casey's account to new addresses; the owner resets
    her, and once she has spent the code (her own new password, her own authenticator kept)
    she logs in from anywhere. Before the fix a reset left the lock in place."""
    owner = practice.owner()
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    lock_out(practice, "casey")
    new_password = "casey-new-pass-1"
    assert try_login(practice, NEW_LAPTOP, "casey", casey.password, "000000").status_code == 429

    code = owner.reset_user(casey.user_id).enrollment_code
    practice.client(NEW_LAPTOP).enroll("casey", code, new_password)

    laptop = try_login(practice, NEW_LAPTOP, "casey", new_password, code_now(casey.totp_secret))
    assert laptop.status_code == 200, laptop.text
