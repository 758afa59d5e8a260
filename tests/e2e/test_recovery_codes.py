"""An owner issues themselves new recovery codes, over HTTP with the thin client (and the remote
CLI), on both stores.

Otto becomes an owner after `chartledger init`, so he holds no recovery codes until he logs in
with his password and TOTP code and issues himself ten, giving his password again. When someone
takes his account over, one of them lets him back in. Issuing new codes makes every earlier one
worthless; nobody but an owner issues them, never from a session begun with a recovery code or
an approval, and never with a stolen session token alone: a wrong password is a failed login,
recorded under that session and counted towards the lockout. The audit view shows it all.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from api.cli import main as chartledger
from api.client import Client, Forbidden, TooManyRequests, Unauthorized, Unprocessable
from api.remote_cli import KEEP_CODES
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    code_now,
    events_of_type,
    office_manager,
    one_line_refusal,
)
from tests.e2e.test_auth import topics
from tests.e2e.test_recovery_approval import (
    OTTO,
    OTTO_PASSWORD,
    REFUSED,
    logged_in,
    served,
    two_owners,
    written_since,
)

CODE = re.compile(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}")
ISSUED = "domain.credentials:Account.RecoveryCodesIssued"
USED = "domain.credentials:Account.RecoveryCodeUsed"
FAILED = "domain.credentials:Account.LoginFailed"


def test_an_owner_added_later_issues_codes_and_gets_back_in_with_one_after_a_takeover(
    practice: Practice,
) -> None:
    olive, otto_id, otto_secret = two_owners(practice)
    otto = logged_in(practice, OTTO, OTTO_PASSWORD, otto_secret)
    otto_session = otto.me().session_id
    assert otto.me().recovery_codes_remaining == 0  # nothing issued to a later owner
    assert olive.me().recovery_codes_remaining == 10  # init's

    codes = otto.issue_recovery_codes(OTTO_PASSWORD).recovery_codes
    assert len(set(codes)) == 10 and all(CODE.fullmatch(c) for c in codes)
    assert otto.me().recovery_codes_remaining == 10

    # Kept as hashes only: the event holds theirs, never a code.
    latest = events_of_type(practice, ISSUED)[-1]
    assert latest.code_hashes == [auth.recovery_code_hash(c) for c in codes]  # type: ignore[attr-defined]
    assert not any(c in repr(vars(latest)) for c in codes)

    # Someone in Olive's stolen session resets Otto's password: his sessions end, his login
    # fails.
    olive.reset_user(otto_id)
    with pytest.raises(Unauthorized):
        otto.me()
    with pytest.raises(Unauthorized):
        practice.client().login(OTTO, OTTO_PASSWORD, "000000")  # the password goes first

    back = practice.client()
    back.recover(OTTO, codes[3].lower(), "otto-back-in-pass")
    assert back.me().user_id == otto_id and back.me().recovery_codes_remaining == 9
    with pytest.raises(Unauthorized):  # once only
        practice.client().recover(OTTO, codes[3], "otto-again-pass-1")
    # The recovery issued none: a session begun with a code cannot either; a fresh login can.
    with pytest.raises(Forbidden):
        back.issue_recovery_codes("otto-back-in-pass")
    again = logged_in(practice, OTTO, "otto-back-in-pass", otto_secret)
    assert len(again.issue_recovery_codes("otto-back-in-pass").recovery_codes) == 10

    # The story in the audit view, each step by Otto in his own session.
    rows = [r for r in olive.audit(sort_by="position") if r.user_id == str(otto_id)]
    story = [(r.event_type, r.action, r.data_category, r.outcome) for r in rows]
    issued = (ISSUED, "change", "users", "success")
    assert story.count(issued) == 2
    assert story.index(issued) < story.index((USED, "change", "users", "success"))
    assert (REFUSED, "create", "users", "failure") in story
    sessions = [r.source for r in rows if r.event_type == ISSUED]
    assert sessions == [str(otto_session), str(again.me().session_id)]


def test_me_counts_codes_another_process_issued_or_spent_on_the_next_call(
    practice: Practice,
) -> None:
    # GET /auth/me reads the account through this process's cache of it, brought up to date on
    # every call: a second server on the same store stands in for another process.
    _, _, otto_secret = two_owners(practice)
    otto = logged_in(practice, OTTO, OTTO_PASSWORD, otto_secret)
    assert otto.me().recovery_codes_remaining == 0  # the account is cached here now
    with TestClient(create_app(practice.settings), raise_server_exceptions=False) as other:
        codes = Client(http=other, token=otto.token).issue_recovery_codes(OTTO_PASSWORD)
        assert otto.me().recovery_codes_remaining == 10
        back = Client(http=other)
        back.recover(OTTO, codes.recovery_codes[0], "otto-recovered-pw")
    here = Client(http=practice.http_client(), token=back.token)
    assert here.me().recovery_codes_remaining == 9


def test_new_codes_make_every_earlier_one_worthless(practice: Practice) -> None:
    olive = practice.owner()
    first = olive.issue_recovery_codes(OWNER_PASSWORD).recovery_codes
    second = olive.issue_recovery_codes(OWNER_PASSWORD).recovery_codes
    assert not set(first) & set(second) and not set(second) & set(practice.recovery_codes)

    before = topics(practice)
    for old in (practice.recovery_codes[0], first[0]):  # init's, and the first reissue's
        with pytest.raises(Unauthorized) as refused:
            practice.client().recover(OWNER, old, "olive-new-password")
        assert refused.value.problem["detail"] == "wrong credentials"
    assert written_since(practice, before) == [FAILED, FAILED]
    assert olive.me().recovery_codes_remaining == 10  # nothing ended, nothing spent

    practice.client().recover(OWNER, second[0], "olive-new-password")
    assert topics(practice).count(ISSUED) == 3  # init, and the two reissues


def test_only_an_owner_issues_codes_and_each_refusal_is_recorded(practice: Practice) -> None:
    olive = practice.owner()
    members = [
        add_member(practice, olive, "casey", "Dr. Casey", "clinician"),
        add_member(practice, olive, "rita", "Rita Risk", "risk_manager"),
        office_manager(practice, olive),
    ]
    morgan = members[-1]
    callers = [m.client() for m in members]
    passwords = [m.password for m in members]

    before = topics(practice)
    for caller, password in zip(callers, passwords, strict=True):
        with pytest.raises(Forbidden) as refused:
            caller.issue_recovery_codes(password)
        assert refused.value.type.endswith(":not-permitted")
        assert refused.value.problem["detail"] == "only an owner issues themselves recovery codes"
        assert caller.me().recovery_codes_remaining == 0
    assert written_since(practice, before) == [REFUSED] * 3
    rows = olive.audit(user_id=morgan.user_id, sort_by="position")
    assert [r.event_type for r in rows if r.outcome == "failure"] == [REFUSED]


def test_a_session_begun_with_a_recovery_code_or_an_approval_cannot_issue_codes(
    practice: Practice,
) -> None:
    olive, otto_id, _ = two_owners(practice)
    approval = olive.approve_recovery(otto_id)
    otto = practice.client()
    otto_secret = auth.from_base32(
        otto.recover_approved(OTTO, approval.approval_code, "otto-approved-pw").totp_secret
    )
    back = practice.client()
    back.recover(OWNER, practice.recovery_codes[0], "olive-recovered-pw")

    before = topics(practice)
    for client, password in ((otto, "otto-approved-pw"), (back, "olive-recovered-pw")):
        with pytest.raises(Forbidden) as refused:
            client.issue_recovery_codes(password)
        detail = refused.value.problem["detail"]
        assert detail == "issuing recovery codes needs a session started with a TOTP code"
    assert written_since(practice, before) == [REFUSED, REFUSED]
    assert ISSUED not in written_since(practice, before)

    # Logged in again with password and TOTP code, each may.
    logged_in(practice, OTTO, "otto-approved-pw", otto_secret).issue_recovery_codes(
        "otto-approved-pw"
    )
    fresh = logged_in(practice, OWNER, "olive-recovered-pw", practice.totp_secret)
    fresh.issue_recovery_codes("olive-recovered-pw")


def test_a_stolen_token_without_the_password_mints_nothing(practice: Practice) -> None:
    olive = practice.owner()
    session_id = str(olive.me().session_id)
    stolen = Client(http=practice.http_client(), token=olive.token)

    leaves = practice.leaves()
    for body in ({}, {"password": ""}, {"password": OWNER_PASSWORD, "extra": 1}, []):
        with pytest.raises(Unprocessable):
            stolen.request("POST", "/auth/recovery-codes", json=body)
    with pytest.raises(Unauthorized):  # no session at all
        practice.client().issue_recovery_codes(OWNER_PASSWORD)
    assert practice.leaves() == leaves

    # A wrong password: a failed login, and nothing else, recorded under the session used.
    before = topics(practice)
    with pytest.raises(Unauthorized) as wrong:
        stolen.issue_recovery_codes("guessed-password-1")
    assert wrong.value.problem["detail"] == "wrong credentials"
    assert written_since(practice, before) == [FAILED]
    (row,) = [r for r in olive.audit(sort_by="position") if r.event_type == FAILED]
    assert (row.user_id, row.source, row.outcome) == (practice.owner_id, session_id, "failure")

    # Guessing on makes this address wait, as at login; then even the right password is
    # refused from it (nothing is written while it waits).
    before = topics(practice)  # (reading the audit view was recorded too)
    for _ in range(3):
        with pytest.raises(Unauthorized):
            stolen.issue_recovery_codes("guessed-password-1")
    with pytest.raises(TooManyRequests):
        stolen.issue_recovery_codes("guessed-password-1")
    assert written_since(practice, before) == [FAILED] * 4
    leaves = practice.leaves()
    with pytest.raises(TooManyRequests):
        stolen.issue_recovery_codes(OWNER_PASSWORD)
    assert practice.leaves() == leaves
    assert ISSUED not in written_since(practice, before)
    assert olive.me().recovery_codes_remaining == 10  # init's codes still stand
    practice.client().recover(OWNER, practice.recovery_codes[0], "olive-unlocked-pw")


@pytest.mark.usefixtures("token_file")
def test_the_remote_cli_issues_codes_and_warns_an_owner_without_any(
    practice: Practice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, _, otto_secret = two_owners(practice)

    with served(practice) as url:
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", OTTO_PASSWORD)
        assert "not logged in" in one_line_refusal(capsys, url, "recovery-codes")
        capsys.readouterr()
        assert chartledger(["--server", url, "login", OTTO, "--totp", code_now(otto_secret)]) == 0
        assert "You hold no unused recovery codes" in capsys.readouterr().out

        assert chartledger(["--server", url, "recovery-codes"]) == 0
        out = capsys.readouterr().out
        codes = re.findall(r"^    ([A-Z2-7]{5}(?:-[A-Z2-7]{5}){3})$", out, re.MULTILINE)
        assert len(set(codes)) == 10 and f"  {KEEP_CODES}\n" in out

        monkeypatch.setenv("CHARTLEDGER_PASSWORD", "guessed-password-1")
        assert "401" in one_line_refusal(capsys, url, "recovery-codes")
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", "x" * (auth.MAX_PASSWORD + 1))
        assert "current password" in one_line_refusal(capsys, url, "recovery-codes")

        monkeypatch.setenv("CHARTLEDGER_PASSWORD", OTTO_PASSWORD)
        assert chartledger(["--server", url, "login", OTTO, "--totp", code_now(otto_secret)]) == 0
        assert "recovery codes" not in capsys.readouterr().out  # he holds ten now
    practice.client().recover(OTTO, codes[0], "otto-cli-recovered")
