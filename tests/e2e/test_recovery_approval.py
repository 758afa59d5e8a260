"""An owner gets back in with a second owner's approval, over HTTP with the thin client (and the
remote CLI), on both stores.

Otto, a second owner, forgot his password and lost his phone, and someone has been guessing at
his login until it locked. Olive approves his recovery: a one-time code she hands him in person.
He spends it for a new password and a new TOTP secret, and his old sessions end. The code works
once and only for fifteen minutes; nobody but another owner, in a session started with a TOTP
code, gives one, and never for themselves; a user administrator gets nowhere with it. The audit
view shows who approved and who recovered.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
import uvicorn

from api import auth
from api.app import create_app
from api.cli import main as chartledger
from api.client import (
    Client,
    Conflict,
    Forbidden,
    NotFound,
    Unauthorized,
    Unprocessable,
)
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    code_now,
    events_of_type,
    lock_out,
    office_manager,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_auth import topics

OTTO, OTTO_PASSWORD = "otto", "otto-password-1"  # the password add_member gives him
CODE = re.compile(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}")
APPROVED = "domain.credentials:Account.RecoveryApproved"
USED = "domain.credentials:Account.RecoveryApprovalUsed"
FAILED = "domain.credentials:Account.LoginFailed"
REFUSED = "domain.credentials:RefusedAttempt.Refused"


def two_owners(practice: Practice) -> tuple[Client, UUID, bytes]:
    """Olive logged in, and a second owner, Otto: his user id and his TOTP secret."""
    olive = practice.owner()
    made = add_member(practice, olive, OTTO, "Otto", "owner")
    assert made.password == OTTO_PASSWORD
    return olive, made.user_id, made.totp_secret


def logged_in(practice: Practice, username: str, password: str, secret: bytes | None) -> Client:
    client = practice.client()
    client.login(username, password, None if secret is None else code_now(secret))
    return client


def written_since(practice: Practice, before: list[str]) -> list[str]:
    after = topics(practice)
    assert after[: len(before)] == before
    return after[len(before) :]


def test_a_second_owner_approves_and_the_locked_out_owner_gets_back_in(
    practice: Practice,
) -> None:
    olive, otto_id, old_secret = two_owners(practice)
    otto = logged_in(practice, OTTO, OTTO_PASSWORD, old_secret)
    lock_out(practice, OTTO)

    approval = olive.approve_recovery(otto_id)
    assert approval.user_id == otto_id and CODE.fullmatch(approval.approval_code)
    left = approval.expires_at - datetime.now(UTC)
    assert timedelta(minutes=14) < left <= practice.settings.recovery_approval_lifetime
    back = practice.client()
    recovered = back.recover_approved(OTTO, approval.approval_code.lower(), "otto-new-password")
    assert back.me().user_id == otto_id == recovered.user_id
    with pytest.raises(Unauthorized):
        otto.me()  # his older sessions ended with the recovery
    new_secret = auth.from_base32(recovered.totp_secret)
    assert new_secret != old_secret and recovered.totp_uri.startswith("otpauth://totp/")
    with pytest.raises(Unauthorized):  # the lost phone's codes no longer work
        practice.client().login(OTTO, "otto-new-password", code_now(old_secret))
    fresh = logged_in(practice, OTTO, "otto-new-password", new_secret)

    # The code works once: a second spend is refused, and only the failure is written.
    before = topics(practice)
    with pytest.raises(Unauthorized) as again:
        practice.client().recover_approved(OTTO, approval.approval_code, "yet-another-password")
    assert again.value.problem["detail"] == "wrong credentials"
    assert written_since(practice, before) == [FAILED]
    assert fresh.me().user_id == otto_id  # nothing ended, nothing changed
    assert topics(practice).count(USED) == 1

    # Kept as its hash only; the event that spent it names the approving owner.
    approved, used = approval_events(practice)
    assert approved.code_hash == auth.recovery_code_hash(approval.approval_code)
    assert approval.approval_code not in repr(vars(approved))
    assert used.approved_by == olive.me().user_id

    # The story in the audit view: Olive approved, Otto recovered and got a new second factor.
    story = [
        (r.user_id, r.event_type.partition(":")[2], r.action, r.data_category, r.outcome)
        for r in olive.audit(sort_by="position")
        if r.data_category == "users"
    ]
    o, t = practice.owner_id, str(otto_id)
    steps = [  # the last three are one transaction
        (o, "Account.RecoveryApproved", "change", "users", "success"),
        (t, "User.SessionsEnded", "change", "users", "success"),
        (t, "Account.RecoveryApprovalUsed", "change", "users", "success"),
        (t, "Account.TotpEnrolled", "change", "users", "success"),
    ]
    assert [story.index(s) for s in steps] == sorted(story.index(s) for s in steps)
    # Nobody was logged in to lock Otto out: it is filed under his account (issue 17).
    assert (t, "Account.LockedOut", "change", "users", "failure") in story


def approval_events(practice: Practice) -> tuple[object, object]:
    """The latest decoded ``RecoveryApproved`` and ``RecoveryApprovalUsed`` events."""
    return events_of_type(practice, APPROVED)[-1], events_of_type(practice, USED)[-1]


def test_an_expired_approval_is_refused_and_a_new_one_voids_the_old(
    practice: Practice, monkeypatch: pytest.MonkeyPatch
) -> None:
    olive, otto_id, secret = two_owners(practice)
    stale = olive.approve_recovery(otto_id)
    before, real_now = topics(practice), auth.now
    with monkeypatch.context() as clock:  # Otto comes back sixteen minutes later
        clock.setattr(auth, "now", lambda: real_now() + timedelta(minutes=16))
        with pytest.raises(Unauthorized):
            practice.client().recover_approved(OTTO, stale.approval_code, "too-late-password")
    assert written_since(practice, before) == [FAILED]
    logged_in(practice, OTTO, OTTO_PASSWORD, secret)  # his password is what it was

    first, second = olive.approve_recovery(otto_id), olive.approve_recovery(otto_id)
    with pytest.raises(Unauthorized):
        practice.client().recover_approved(OTTO, first.approval_code, "first-code-password")
    practice.client().recover_approved(OTTO, second.approval_code, "second-code-password")


def test_only_another_owner_approves_and_wrong_input_writes_nothing(practice: Practice) -> None:
    olive, otto_id, _ = two_owners(practice)
    casey_member = add_member(practice, olive, "casey", "Dr. Casey", "clinician")
    sam_member = add_member(practice, olive, "sam", "Sam", "staff")
    casey_id = casey_member.user_id

    leaves = practice.leaves()
    with pytest.raises(NotFound):
        olive.approve_recovery(uuid4())
    with pytest.raises(Conflict) as not_owner:
        olive.approve_recovery(casey_id)  # a user administrator sets a non-owner's password
    assert not_owner.value.type.endswith(":user-state")
    with pytest.raises(Unprocessable):
        olive.request("POST", "/users/not-a-user/recovery-approvals")
    back = practice.client()
    for body in (
        {"username": OTTO, "approval_code": "AAAAA-AAAAA-AAAAA-AAAAA", "new_password": "short"},
        {"username": OTTO, "new_password": "long-enough-password"},
        {"username": OTTO, "approval_code": "x", "new_password": "p" * 20, "extra": 1},
    ):
        with pytest.raises(Unprocessable):
            back.request("POST", "/auth/recover-approved", json=body)
    with pytest.raises(Unauthorized):  # no such user: nothing to record it against
        back.recover_approved("nobody", "AAAAA-AAAAA-AAAAA-AAAAA", "long-enough-password")
    assert practice.leaves() == leaves

    # Refusals are 403s, and each is recorded.
    casey, sam = casey_member.client(), sam_member.client()
    before = topics(practice)
    attempts = [
        lambda: casey.approve_recovery(otto_id),
        lambda: sam.approve_recovery(UUID(practice.owner_id)),
        lambda: olive.approve_recovery(UUID(practice.owner_id)),  # never one's own
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.type.endswith(":not-permitted")
    assert written_since(practice, before) == [REFUSED] * len(attempts)


def test_a_session_begun_without_a_totp_code_cannot_approve(practice: Practice) -> None:
    _, otto_id, _ = two_owners(practice)
    olive = practice.client()
    olive.recover(OWNER, practice.recovery_codes[0], "olive-new-password")
    with pytest.raises(Forbidden) as refused:
        olive.approve_recovery(otto_id)
    assert "started with a TOTP code" in refused.value.problem["detail"]
    logged_in(practice, OWNER, "olive-new-password", practice.totp_secret).approve_recovery(otto_id)


def test_an_approval_falls_when_the_owner_is_demoted_before_spending_it(
    practice: Practice,
) -> None:
    olive, otto_id, _ = two_owners(practice)
    approval = olive.approve_recovery(otto_id)
    olive.revoke_role(otto_id, "owner")
    with pytest.raises(Unauthorized):
        practice.client().recover_approved(OTTO, approval.approval_code, "not-an-owner-now")
    assert USED not in topics(practice)


def test_a_user_administrator_cannot_take_over_an_owner_with_approvals(
    practice: Practice,
) -> None:
    olive, otto_id, _ = two_owners(practice)
    olive_id = UUID(practice.owner_id)
    morgan = office_manager(practice, olive)
    manager = morgan.client()
    mallory = manager.create_user("mallory", "Mallory", "staff")

    before = topics(practice)
    for target in (olive_id, otto_id, morgan.user_id, mallory.user_id):
        with pytest.raises(Forbidden) as refused:
            manager.approve_recovery(target)
        assert "only an owner may approve" in refused.value.problem["detail"]
    assert written_since(practice, before) == [REFUSED] * 4

    # Guessing at an owner's approval fails like a wrong password; a code handed to Otto is
    # Otto's alone; and Olive's password and sessions are untouched throughout.
    with pytest.raises(Unauthorized):
        manager.recover_approved(OWNER, "AAAAA-AAAAA-AAAAA-AAAAA", "taken-over-pass-1")
    for_otto = olive.approve_recovery(otto_id)
    with pytest.raises(Unauthorized):
        practice.client().recover_approved(OWNER, for_otto.approval_code, "taken-over-pass-2")
    assert olive.me().user_id == olive_id
    logged_in(practice, OWNER, OWNER_PASSWORD, practice.totp_secret)
    assert USED not in topics(practice)
    rows = olive.audit(user_id=morgan.user_id, sort_by="position")
    assert [r.event_type for r in rows if r.outcome == "failure"] == [REFUSED] * 4


@contextmanager
def served(practice: Practice) -> Iterator[str]:
    """The practice's app behind a real socket, for the command line."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(practice.settings), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.usefixtures("token_file")
def test_the_remote_cli_approves_and_recovers(
    practice: Practice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, otto_id, _ = two_owners(practice)
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)

    with served(practice) as url:
        owner_logs_in_remotely(practice, url, capsys)
        assert chartledger(["--server", url, "users", "approve-recovery", str(otto_id)]) == 0
        found = CODE.search(capsys.readouterr().out)
        assert found
        one_line_refusal(capsys, url, "users", "approve-recovery", "not-a-uuid")
        assert "403" in one_line_refusal(
            capsys, url, "users", "approve-recovery", practice.owner_id
        )

        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "otto-cli-password")
        monkeypatch.setenv("CHARTLEDGER_APPROVAL_CODE", "AAAAA-AAAAA-AAAAA-AAAAA")
        assert "401" in one_line_refusal(capsys, url, "recover-approved", OTTO)
        monkeypatch.setenv("CHARTLEDGER_APPROVAL_CODE", found.group(0))
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "short")  # refused before sending
        assert "new_password" in one_line_refusal(capsys, url, "recover-approved", OTTO)
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "otto-cli-password")
        assert chartledger(["--server", url, "recover-approved", OTTO]) == 0
        out = capsys.readouterr().out
        secret = re.search(r"totp secret:  ([A-Z2-7]+)", out)
        assert secret and f"Recovered {OTTO}" in out
        assert chartledger(["--server", url, "users", "list"]) == 0  # as Otto now
        assert OTTO in capsys.readouterr().out
    otto = logged_in(practice, OTTO, "otto-cli-password", auth.from_base32(secret.group(1)))
    assert otto.me().user_id == otto_id
