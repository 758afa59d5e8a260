from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.base import user_subject
from domain.credentials import (
    Account,
    account_id,
    check_may_administer,
    check_may_grant,
    check_owners_remain,
)
from domain.errors import AccountStateError, InvalidEntry, NotPermitted
from domain.sessions import Session
from domain.users import User
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects


def account(user_id=None) -> Account:  # type: ignore[no-untyped-def]
    return Account.open(username="Alice", user_id=user_id or uuid4(), password_hash="h", at=AT)


def test_an_accounts_id_is_its_username_case_folded() -> None:
    assert account().id == account_id("alice") == account_id("ALICE")


@pytest.mark.parametrize("username", ["", "has space", "x" * 65, "semi;colon"])
def test_a_malformed_username_is_refused(username: str) -> None:
    with pytest.raises(InvalidEntry, match="username"):
        Account.open(username=username, user_id=uuid4(), password_hash="h", at=AT)


def test_the_fifth_failure_in_a_row_locks_the_account_for_a_while() -> None:
    acc = account()
    for _ in range(4):
        acc.record_failure(reason="password", at=AT, max_failures=5, lockout=timedelta(minutes=15))
    assert not acc.is_locked(AT)
    acc.record_failure(reason="totp", at=AT, max_failures=5, lockout=timedelta(minutes=15))
    assert acc.is_locked(AT + timedelta(minutes=14))
    assert not acc.is_locked(AT + timedelta(minutes=15))
    names = [type(e).__name__ for e in acc.collect_events()]
    assert names == ["Opened", *["LoginFailed"] * 5, "LockedOut"]


def test_a_login_resets_the_failures_and_a_totp_step_is_used_once() -> None:
    acc = account()
    acc.record_failure(reason="password", at=AT, max_failures=5, lockout=timedelta(minutes=1))
    acc.record_login(session_id=uuid4(), at=AT, method="password+totp", totp_step=100)
    assert acc.failures == 0
    with pytest.raises(AccountStateError, match="already used"):
        acc.record_login(session_id=uuid4(), at=AT, method="password+totp", totp_step=100)


def test_a_recovery_code_works_once_and_lifts_a_lockout() -> None:
    acc = account()
    acc.issue_recovery_codes(code_hashes=["a", "b"], at=AT)
    for _ in range(5):
        acc.record_failure(reason="password", at=AT, max_failures=5, lockout=timedelta(hours=1))
    acc.use_recovery_code(code_hash="a", password_hash="new", at=AT)
    assert (acc.password_hash, acc.recovery_codes, acc.is_locked(AT)) == ("new", ["b"], False)
    with pytest.raises(AccountStateError, match="no such unused recovery code"):
        acc.use_recovery_code(code_hash="a", password_hash="again", at=AT)


def test_an_accounts_and_a_sessions_events_concern_the_user_and_replay(memory: Memory) -> None:
    user_id = uuid4()
    acc = account(user_id)
    acc.enroll_totp(secret=b"s" * 20, by=user_id, at=AT)
    session = Session.start(session_id=uuid4(), user_id=user_id, token_hash="t", at=AT, method="p")
    acc.record_login(session_id=session.id, at=AT, method="password")
    session.end(reason="logout", at=AT)
    assert_round_trips(memory, acc, session)
    assert subjects(memory, acc) == subjects(memory, session) == {(user_subject(user_id),)}
    with pytest.raises(AccountStateError, match="already ended"):
        session.end(reason="idle", at=AT)


def test_only_an_owner_changes_an_owner_or_makes_one() -> None:
    owner, staff = User.register(name="o", role="owner"), User.register(name="s", role="staff")
    with pytest.raises(NotPermitted, match="only an owner may change user"):
        check_may_administer(staff, owner)
    with pytest.raises(NotPermitted, match="only an owner may grant the role owner"):
        check_may_grant(staff, "owner")
    check_may_administer(owner, staff)
    check_may_grant(owner, "owner")


def test_a_user_administrator_never_touches_owners_admins_or_their_own_roles() -> None:
    owner = User.register(name="o", role="owner")
    admin, other = User.register(name="m", role="staff"), User.register(name="a", role="staff")
    admin.grant_role("user_admin")
    other.grant_role("user_admin")
    clinician = User.register(name="c", role="clinician")
    check_may_administer(admin, clinician)
    check_may_grant(admin, "staff", clinician)
    for target in (owner, other):
        with pytest.raises(NotPermitted, match="only an owner may change user"):
            check_may_administer(admin, target)
    with pytest.raises(NotPermitted, match="grant the role user_admin"):
        check_may_grant(admin, "user_admin", clinician)
    with pytest.raises(NotPermitted, match="their own roles"):
        check_may_grant(admin, "clinician", admin)
    with pytest.raises(NotPermitted, match="at least one active owner"):
        check_owners_remain(0)


def test_ending_a_users_sessions_ends_those_started_before_only() -> None:
    user = User.register(name="x", role="clinician")
    user.end_sessions(reason="password set by another user", at=AT)
    assert not user.session_is_current(AT - timedelta(seconds=1))
    assert user.session_is_current(AT + timedelta(seconds=1))
    user.deactivate(reason="left", at=AT + timedelta(days=1))
    assert not user.session_is_current(AT + timedelta(days=2))
