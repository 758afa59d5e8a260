from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest

from domain.base import user_subject
from domain.credentials import (
    Account,
    account_id,
    check_approval_stands,
    check_may_approve_recovery,
    check_may_issue_recovery_codes,
    check_owners_remain,
)
from domain.errors import AccountStateError, InvalidEntry, NotPermitted, UserStateError
from domain.sessions import Session
from domain.throttle import ACCOUNT_LOCK_FAILURES
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


def test_the_hundredth_failed_login_in_a_row_is_recorded_as_a_lockout(memory: Memory) -> None:
    acc = account()
    for _ in range(ACCOUNT_LOCK_FAILURES - 1):
        acc.record_failure(reason="password", at=AT, address="203.0.113.7")
    for reason in ("recovery_code", "recovery_approval"):  # 100 random bits: never locked out
        acc.record_failure(reason=reason, at=AT, address="203.0.113.8")
    names = [type(e).__name__ for e in acc.collect_events()]
    assert "LockedOut" not in names and acc.failures == ACCOUNT_LOCK_FAILURES - 1
    acc.record_failure(reason="totp", at=AT, address="2001:db8::1")
    events = acc.collect_events()
    assert [type(e).__name__ for e in events] == ["LoginFailed", "LockedOut"]
    assert (events[0].address, events[1].until, events[1].failures) == (  # type: ignore[attr-defined]
        "2001:db8::1",
        None,
        ACCOUNT_LOCK_FAILURES,
    )
    acc.record_failure(reason="password", at=AT)  # one lockout, however many failures follow
    assert [type(e).__name__ for e in acc.collect_events()] == ["LoginFailed"]


def test_a_failures_address_is_kept_and_replays(memory: Memory) -> None:
    acc = account()
    acc.record_failure(reason="password", at=AT, address="198.51.100.23")
    acc.record_failure(reason="password", at=AT)  # from a caller with no address
    for _ in range(ACCOUNT_LOCK_FAILURES):
        acc.record_failure(reason="totp", at=AT, address="198.51.100.24")
    assert_round_trips(memory, acc)
    addresses = [getattr(e, "address", "-") for e in memory.stored(acc.id)][1:4]
    assert addresses == ["198.51.100.23", None, "198.51.100.24"]


@pytest.mark.parametrize("address", ["", "x" * 65, 7])
def test_a_malformed_address_is_refused(address: object) -> None:
    with pytest.raises(InvalidEntry, match="address"):
        account().record_failure(reason="password", at=AT, address=address)  # type: ignore[arg-type]


def test_a_login_resets_the_failures_and_a_totp_step_is_used_once() -> None:
    acc = account()
    acc.record_failure(reason="password", at=AT)
    acc.record_login(session_id=uuid4(), at=AT, method="password+totp", totp_step=100)
    assert acc.failures == 0
    with pytest.raises(AccountStateError, match="already used"):
        acc.record_login(session_id=uuid4(), at=AT, method="password+totp", totp_step=100)


def test_a_recovery_code_works_once_and_lifts_a_lockout() -> None:
    acc = account()
    acc.issue_recovery_codes(code_hashes=["a", "b"], at=AT)
    for _ in range(ACCOUNT_LOCK_FAILURES):
        acc.record_failure(reason="password", at=AT)
    acc.use_recovery_code(code_hash="a", password_hash="new", at=AT)
    assert (acc.password_hash, acc.recovery_codes, acc.failures) == ("new", ["b"], 0)
    with pytest.raises(AccountStateError, match="no such unused recovery code"):
        acc.use_recovery_code(code_hash="a", password_hash="again", at=AT)


def test_new_recovery_codes_replace_every_earlier_one_used_or_not() -> None:
    acc = account()
    acc.issue_recovery_codes(code_hashes=["a", "b", "c"], at=AT)
    acc.use_recovery_code(code_hash="a", password_hash="new", at=AT)
    acc.issue_recovery_codes(code_hashes=["d", "e"], at=AT)
    assert acc.recovery_codes == ["d", "e"]
    for old in ("a", "b", "c"):
        with pytest.raises(AccountStateError, match="no such unused recovery code"):
            acc.use_recovery_code(code_hash=old, password_hash="again", at=AT)
    acc.use_recovery_code(code_hash="e", password_hash="again", at=AT)
    names = [type(e).__name__ for e in acc.collect_events()]
    assert names[1:] == ["RecoveryCodesIssued", "RecoveryCodeUsed"] * 2


@pytest.mark.parametrize("hashes", [[], ["a", "a"], ["a", ""], ["a", b"b"]])
def test_recovery_codes_are_distinct_hashes_in_text_or_none_are_issued(
    hashes: list[object],
) -> None:
    acc = account()
    acc.issue_recovery_codes(code_hashes=["kept"], at=AT)
    pending = len(acc.pending_events)
    with pytest.raises(InvalidEntry, match="code_hashes"):
        acc.issue_recovery_codes(code_hashes=hashes, at=AT)
    assert acc.recovery_codes == ["kept"] and len(acc.pending_events) == pending


def test_reissued_recovery_codes_concern_the_user_and_replay(memory: Memory) -> None:
    user_id = uuid4()
    acc = account(user_id)
    acc.issue_recovery_codes(code_hashes=["a", "b"], at=AT)
    acc.use_recovery_code(code_hash="b", password_hash="new", at=AT)
    acc.issue_recovery_codes(code_hashes=["c", "d"], at=AT + timedelta(days=1))
    assert_round_trips(memory, acc)
    assert memory.repository.get(acc.id).recovery_codes == ["c", "d"]
    assert subjects(memory, acc) == {(user_subject(user_id),)}


def test_only_an_active_owner_in_a_totp_session_issues_themselves_recovery_codes() -> None:
    olive = User.register(name="o", role="owner")
    manager = User.register(name="m", role="staff")
    manager.grant_role("user_admin")
    strangers = [manager, *(User.register(name=r, role=r) for r in ("clinician", "risk_manager"))]
    check_may_issue_recovery_codes(olive, session_method="password+totp")
    for stranger in strangers:
        with pytest.raises(NotPermitted, match="only an owner issues themselves recovery codes"):
            check_may_issue_recovery_codes(stranger, session_method="password+totp")
    for method in ("recovery_code", "recovery_approval", "password", ""):
        with pytest.raises(NotPermitted, match="started with a TOTP code"):
            check_may_issue_recovery_codes(olive, session_method=method)
    olive.deactivate(reason="retired", at=AT)
    with pytest.raises(NotPermitted, match="only an owner"):
        check_may_issue_recovery_codes(olive, session_method="password+totp")


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


def test_the_practice_keeps_an_active_owner() -> None:
    with pytest.raises(NotPermitted, match="at least one active owner"):
        check_owners_remain(0)


def test_ending_a_users_sessions_ends_those_started_before_only() -> None:
    user = User.register(name="x", role="clinician")
    user.end_sessions(reason="password set by another user", at=AT)
    assert not user.session_is_current(AT - timedelta(seconds=1))
    assert user.session_is_current(AT + timedelta(seconds=1))
    user.deactivate(reason="left", at=AT + timedelta(days=1))
    assert not user.session_is_current(AT + timedelta(days=2))


FIFTEEN = timedelta(minutes=15)


def approved(acc: Account, code_hash: str = "ok", by=None) -> Account:  # type: ignore[no-untyped-def]
    acc.approve_recovery(code_hash=code_hash, by=by or uuid4(), at=AT, expires_at=AT + FIFTEEN)
    return acc


def test_a_recovery_approval_works_once_sets_password_and_totp_and_lifts_a_lockout() -> None:
    acc = account()
    acc.enroll_totp(secret=b"o" * 20, by=acc.user_id, at=AT)
    for _ in range(ACCOUNT_LOCK_FAILURES):
        acc.record_failure(reason="password", at=AT)
    approved(acc).use_recovery_approval(
        code_hash="ok", password_hash="new", totp_secret=b"n" * 20, at=AT + FIFTEEN / 2
    )
    assert (acc.password_hash, acc.totp_secret, acc.failures) == ("new", b"n" * 20, 0)
    assert acc.recovery_approval is None
    names = [type(e).__name__ for e in acc.collect_events()]
    assert names[-3:] == ["RecoveryApproved", "RecoveryApprovalUsed", "TotpEnrolled"]
    with pytest.raises(AccountStateError, match="no such unused recovery approval"):
        acc.use_recovery_approval(code_hash="ok", password_hash="x", totp_secret=b"m" * 20, at=AT)


def test_the_used_event_names_the_approving_owner() -> None:
    approver = uuid4()
    acc = approved(account(), by=approver)
    acc.use_recovery_approval(code_hash="ok", password_hash="new", totp_secret=b"n" * 20, at=AT)
    (used,) = [e for e in acc.collect_events() if type(e).__name__ == "RecoveryApprovalUsed"]
    assert used.approved_by == approver


@pytest.mark.parametrize("late", [FIFTEEN, FIFTEEN + timedelta(seconds=1)])
def test_an_expired_recovery_approval_is_refused_and_changes_nothing(late: timedelta) -> None:
    acc = approved(account())
    with pytest.raises(AccountStateError, match="has expired"):
        acc.use_recovery_approval(
            code_hash="ok", password_hash="new", totp_secret=b"n" * 20, at=AT + late
        )
    assert acc.password_hash == "h" and acc.recovery_approval is not None


def test_a_wrong_code_or_a_bad_secret_is_refused_before_any_event() -> None:
    acc = approved(account())
    pending = len(acc.pending_events)
    with pytest.raises(AccountStateError, match="no such unused recovery approval"):
        acc.use_recovery_approval(code_hash="no", password_hash="n", totp_secret=b"n" * 20, at=AT)
    with pytest.raises(InvalidEntry, match="16 random bytes"):
        acc.use_recovery_approval(code_hash="ok", password_hash="n", totp_secret=b"short", at=AT)
    assert len(acc.pending_events) == pending


def test_a_new_approval_voids_the_one_before() -> None:
    acc = approved(approved(account(), "first"), "second")
    with pytest.raises(AccountStateError, match="no such unused"):
        acc.use_recovery_approval(
            code_hash="first", password_hash="n", totp_secret=b"n" * 20, at=AT
        )
    acc.use_recovery_approval(code_hash="second", password_hash="n", totp_secret=b"n" * 20, at=AT)


def test_an_account_refuses_its_own_users_approval_and_an_empty_window() -> None:
    acc = account()
    with pytest.raises(NotPermitted, match="their own recovery"):
        acc.approve_recovery(code_hash="ok", by=acc.user_id, at=AT, expires_at=AT + FIFTEEN)
    with pytest.raises(InvalidEntry, match="expires_at must be after at"):
        acc.approve_recovery(code_hash="ok", by=uuid4(), at=AT, expires_at=AT)
    assert acc.recovery_approval is None


def test_an_approval_and_its_use_concern_the_owner_and_replay(memory: Memory) -> None:
    user_id = uuid4()
    acc = approved(account(user_id))
    assert_round_trips(memory, acc)
    acc.use_recovery_approval(code_hash="ok", password_hash="new", totp_secret=b"n" * 20, at=AT)
    assert_round_trips(memory, acc)
    assert subjects(memory, acc) == {(user_subject(user_id),)}


def test_only_another_owner_in_a_totp_session_approves_an_owners_recovery() -> None:
    olive, otto = User.register(name="o", role="owner"), User.register(name="t", role="owner")
    manager = User.register(name="m", role="staff")
    manager.grant_role("user_admin")
    clinician = User.register(name="c", role="clinician")
    check_may_approve_recovery(olive, otto, session_method="password+totp")
    for stranger in (manager, clinician):
        with pytest.raises(NotPermitted, match="only an owner may approve"):
            check_may_approve_recovery(stranger, otto, session_method="password")
    for method in ("recovery_code", "recovery_approval", "password"):
        with pytest.raises(NotPermitted, match="started with a TOTP code"):
            check_may_approve_recovery(olive, otto, session_method=method)
    with pytest.raises(NotPermitted, match="their own recovery"):
        check_may_approve_recovery(olive, olive, session_method="password+totp")
    for not_an_owner in (manager, clinician):
        with pytest.raises(UserStateError, match="not an active owner"):
            check_may_approve_recovery(olive, not_an_owner, session_method="password+totp")
    olive.deactivate(reason="retired", at=AT)
    with pytest.raises(NotPermitted, match="only an owner may approve"):
        check_may_approve_recovery(olive, otto, session_method="password+totp")


def test_an_approval_falls_when_either_owner_is_no_longer_one() -> None:
    olive, otto = User.register(name="o", role="owner"), User.register(name="t", role="owner")
    check_approval_stands(olive, otto)
    otto.revoke_role("owner")
    with pytest.raises(AccountStateError, match="no longer stands"):
        check_approval_stands(olive, otto)
    olive.deactivate(reason="left", at=AT)
    with pytest.raises(AccountStateError, match="no longer stands"):
        check_approval_stands(olive, User.register(name="x", role="owner"))


def pending(user_id=None) -> Account:  # type: ignore[no-untyped-def]
    """An account opened with no password, and an enrollment code outstanding."""
    acc = Account.open(username="Casey", user_id=user_id or uuid4(), password_hash=None, at=AT)
    acc.issue_enrollment_code(
        code_hash="code-1", by=uuid4(), at=AT, expires_at=AT + timedelta(hours=24)
    )
    return acc


def test_an_enrollment_code_is_spent_once_for_a_password_and_a_first_authenticator() -> None:
    memory = Memory()
    acc = pending()
    assert acc.password_hash is None
    with pytest.raises(InvalidEntry, match="TOTP secret"):  # none held: one must be enrolled
        acc.enroll(code_hash="code-1", password_hash="p", totp_secret=None, at=AT)
    acc.enroll(code_hash="code-1", password_hash="p", totp_secret=b"s" * 20, at=AT)
    assert (acc.password_hash, acc.totp_secret, acc.enrollment) == ("p", b"s" * 20, None)
    with pytest.raises(AccountStateError, match="no such unused enrollment code"):
        acc.enroll(code_hash="code-1", password_hash="q", totp_secret=None, at=AT)
    assert_round_trips(memory, acc)


def test_a_reset_voids_the_password_keeps_the_authenticator_and_a_newer_code_voids_the_older() -> (
    None
):
    acc = pending()
    acc.enroll(code_hash="code-1", password_hash="p", totp_secret=b"s" * 20, at=AT)
    later = AT + timedelta(hours=1)
    for code in ("code-2", "code-3"):
        acc.issue_enrollment_code(
            code_hash=code, by=uuid4(), at=later, expires_at=later + timedelta(hours=24)
        )
    assert acc.password_hash is None and acc.totp_secret == b"s" * 20
    with pytest.raises(AccountStateError, match="no such unused"):
        acc.enroll(code_hash="code-2", password_hash="q", totp_secret=None, at=later)
    with pytest.raises(InvalidEntry, match="TOTP secret"):  # the authenticator is never replaced
        acc.enroll(code_hash="code-3", password_hash="q", totp_secret=b"t" * 20, at=later)
    acc.enroll(code_hash="code-3", password_hash="q", totp_secret=None, at=later)
    assert (acc.password_hash, acc.totp_secret) == ("q", b"s" * 20)


def test_an_expired_enrollment_code_is_refused() -> None:
    acc = pending()
    with pytest.raises(AccountStateError, match="expired"):
        acc.enroll(
            code_hash="code-1",
            password_hash="p",
            totp_secret=b"s" * 20,
            at=AT + timedelta(hours=24),
        )
    with pytest.raises(InvalidEntry, match="expires_at"):
        acc.issue_enrollment_code(code_hash="c", by=uuid4(), at=AT, expires_at=AT)


def test_an_authenticator_reset_forgets_the_secret_until_the_next_enrollment() -> None:
    acc = pending()
    acc.enroll(code_hash="code-1", password_hash="p", totp_secret=b"s" * 20, at=AT)
    acc.reset_authenticator(by=uuid4(), at=AT)
    assert acc.totp_secret is None
    with pytest.raises(AccountStateError, match="no authenticator"):
        acc.reset_authenticator(by=uuid4(), at=AT)


def test_ending_the_other_sessions_keeps_the_one_named_until_the_next_end() -> None:
    user = User.register(name="x", role="clinician")
    kept, other = uuid4(), uuid4()
    before = AT - timedelta(seconds=1)
    user.end_other_sessions(keep=kept, reason="password changed by the user", at=AT)
    assert user.session_is_current(before, kept)
    assert not user.session_is_current(before, other)
    assert user.session_is_current(AT, other)
    user.end_sessions(reason="reset", at=AT + timedelta(seconds=1))
    assert not user.session_is_current(before, kept)
