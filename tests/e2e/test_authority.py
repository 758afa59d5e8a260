"""Who may grant what, and enrollment codes, played as the attacker plays them, over HTTP on the
real app and store (both stores).

An office manager (``user_admin``) tries to mint a risk manager, auditor, user administrator or
owner, to touch a risk manager's account, and to become a clinician by setting her password;
each is refused (403) with nothing written but the refusal, which the audit view shows naming
actor, target and action. Accounts are set up with single-use enrollment codes, kept only as
hashes, that expire and are voided by newer ones; a password reset never resets the
authenticator, so an administrator who spends a reset code themselves still cannot log in. A
user changing their own password gives the current one and ends their other sessions.
"""

from __future__ import annotations

import getpass
import re
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from api.cli import main as chartledger
from api.client import Client, Conflict, Forbidden, Unauthorized, Unprocessable
from tests.e2e.conftest import (
    OWNER_PASSWORD,
    Practice,
    add_member,
    code_now,
    events_of_type,
    office_manager,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_auth import topics
from tests.e2e.test_recovery_approval import REFUSED, served, written_since

FAILED = "domain.credentials:Account.LoginFailed"
ISSUED = "domain.credentials:Account.EnrollmentCodeIssued"
ENROLLED = "domain.credentials:Account.Enrolled"
TOTP_ENROLLED = "domain.credentials:Account.TotpEnrolled"
CODE = re.compile(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}")
ABOVE_STAFF = ["risk_manager", "auditor", "user_admin", "owner"]


def raw(client: Client, method: str, path: str, body: Any = None) -> httpx.Response:
    """The answer as it comes, refusals included (the thin client raises on them)."""
    headers = {"Authorization": f"Bearer {client.token}"}
    return client.http.request(method, path, json=body, headers=headers)


def refusals(owner: Client, actor: UUID) -> list[tuple[str | None, str | None, str | None]]:
    """(actor, target, detail) of each refused attempt by ``actor``, as the audit view has it."""
    return [
        (r.user_id, r.target_user_id, r.detail)
        for r in owner.audit(user_id=actor, sort_by="position")
        if r.event_type == REFUSED
    ]


def assert_no_secret(answer: httpx.Response) -> None:
    assert not CODE.search(answer.text)
    assert "enrollment_code" not in answer.text and "totp" not in answer.text


# -- attack 1: a user administrator mints a role above clinician and staff ---------------------


@pytest.mark.parametrize("role", ABOVE_STAFF)
def test_a_user_administrator_cannot_create_or_grant_a_role_above_clinician_and_staff(
    practice: Practice, role: str
) -> None:
    olive = practice.owner()
    morgan = office_manager(practice, olive)
    casey = add_member(practice, olive, "casey", "Dr. Casey", "clinician")
    manager = morgan.client()

    before = topics(practice)
    created = raw(manager, "POST", "/users", {"username": "mallory", "name": "M", "role": role})
    granted = raw(manager, "POST", f"/users/{casey.user_id}/roles", {"role": role})
    for answer in (created, granted):
        assert answer.status_code == 403 and answer.json()["type"].endswith(":not-permitted")
        assert_no_secret(answer)
    # Nothing written but the two refusals: no user, no account, no role, no code.
    assert written_since(practice, before) == [REFUSED, REFUSED]
    assert "mallory" not in {u.username for u in olive.users()}
    assert {u.username: u.roles for u in olive.users()}["casey"] == ["clinician"]

    m, c = str(morgan.user_id), str(casey.user_id)
    assert refusals(olive, morgan.user_id) == [
        (m, None, f"create_user: username mallory, role {role}"),
        (m, c, f"grant_role: role {role}"),
    ]


@pytest.mark.parametrize("role", ["clinician", "staff", "risk_manager", "auditor"])
def test_anyone_else_who_tries_to_administer_users_is_refused_and_recorded(
    practice: Practice, role: str
) -> None:
    olive = practice.owner()
    eve = add_member(practice, olive, "eve", "Eve", role)
    casey = add_member(practice, olive, "casey", "Dr. Casey", "clinician")
    eves = eve.client()
    before = topics(practice)
    for method, path, body in (
        ("POST", "/users", {"username": "mallory", "name": "M", "role": "clinician"}),
        ("POST", f"/users/{eve.user_id}/roles", {"role": "owner"}),
        ("POST", f"/users/{casey.user_id}/reset", None),
    ):
        answer = raw(eves, method, path, body)
        assert answer.status_code == 403, (path, answer.text)
        assert_no_secret(answer)
    assert written_since(practice, before) == [REFUSED] * 3
    e, c = str(eve.user_id), str(casey.user_id)
    assert refusals(olive, eve.user_id) == [
        (e, None, "create_user: username mallory, role clinician"),
        (e, e, "grant_role: role owner"),
        (e, c, "reset: password"),
    ]


@pytest.mark.parametrize("role", ["risk_manager", "auditor"])
def test_a_user_administrator_cannot_touch_a_risk_manager_or_an_auditor(
    practice: Practice, role: str
) -> None:
    olive = practice.owner()
    morgan = office_manager(practice, olive)
    rita = add_member(practice, olive, "rita", "Rita", role)
    ritas = rita.client()
    manager = morgan.client()

    before = topics(practice)
    attempts = [
        ("POST", f"/users/{rita.user_id}/deactivate", {"reason": "let go"}, "deactivate"),
        ("DELETE", f"/users/{rita.user_id}/roles/{role}", None, f"revoke_role: role {role}"),
        ("POST", f"/users/{rita.user_id}/roles", {"role": "staff"}, "grant_role: role staff"),
        ("POST", f"/users/{rita.user_id}/reset", None, "reset: password"),
        ("POST", f"/users/{rita.user_id}/reset", {"authenticator": True},
         "reset_authenticator: password and authenticator"),
        ("PUT", f"/users/{rita.user_id}/password", {"password": "taken-over-pass-1"},
         "set_password"),
    ]  # fmt: skip
    for method, path, body, _ in attempts:
        answer = raw(manager, method, path, body)
        assert answer.status_code == 403, (path, answer.text)
        assert_no_secret(answer)
    assert written_since(practice, before) == [REFUSED] * len(attempts)

    m, r = str(morgan.user_id), str(rita.user_id)
    assert refusals(olive, morgan.user_id) == [(m, r, detail) for *_, detail in attempts]
    assert ritas.me().roles == [role]  # her session, her roles, her password: all as they were
    practice.client().login("rita", rita.password, code_now(rita.totp_secret))


# -- attack 2: a user administrator becomes a clinician -------------------------------------


def test_a_user_administrator_cannot_set_a_clinicians_password_or_end_a_risk_managers_sessions(
    practice: Practice,
) -> None:
    olive = practice.owner()
    morgan = office_manager(practice, olive)
    casey = add_member(practice, olive, "casey", "Dr. Casey", "clinician")
    rita = add_member(practice, olive, "rita", "Rita", "risk_manager")
    caseys, ritas = casey.client(), rita.client()
    manager = morgan.client()

    before = topics(practice)
    taken = raw(manager, "PUT", f"/users/{casey.user_id}/password", {"password": "morgans-pass-1"})
    assert taken.status_code == 403 and "/reset" in taken.json()["detail"]
    for path, body in (
        (f"/users/{rita.user_id}/password", {"password": "morgans-pass-2"}),
        (f"/users/{rita.user_id}/reset", None),
    ):
        assert raw(manager, "PUT" if "password" in path else "POST", path, body).status_code == 403
    assert written_since(practice, before) == [REFUSED] * 3

    # Casey's password is hers: the one Morgan chose logs nobody in, even with Casey's code.
    with pytest.raises(Unauthorized):
        practice.client().login("casey", "morgans-pass-1", code_now(casey.totp_secret))
    assert caseys.me().user_id == casey.user_id and ritas.me().user_id == rita.user_id
    m = str(morgan.user_id)
    assert refusals(olive, morgan.user_id) == [
        (m, str(casey.user_id), "set_password"),
        (m, str(rita.user_id), "set_password"),
        (m, str(rita.user_id), "reset: password"),
    ]


def test_nobody_sets_another_users_password_not_even_an_owner(practice: Practice) -> None:
    olive = practice.owner()
    casey = add_member(practice, olive, "casey", "Dr. Casey", "clinician")
    before = topics(practice)
    body = {"current_password": OWNER_PASSWORD, "new_password": "olive-sets-it-1"}
    for payload in ({"password": "olive-sets-it-1"}, body):
        answer = raw(olive, "PUT", f"/users/{casey.user_id}/password", payload)
        assert answer.status_code == 403
    assert written_since(practice, before) == [REFUSED, REFUSED]
    casey.login()  # her password still works


# -- attack 7: one's own password -----------------------------------------------------------


def test_changing_ones_own_password_needs_the_current_one_and_ends_the_other_sessions(
    practice: Practice,
) -> None:
    casey = add_member(practice, practice.owner(), "casey", "Dr. Casey", "clinician")
    here, elsewhere = casey.login(), casey.login()

    before = topics(practice)
    for body in ({"new_password": "casey-new-pass-1"}, {"current_password": casey.password}):
        assert raw(here, "POST", "/auth/password", body).status_code == 422
    assert written_since(practice, before) == []
    with pytest.raises(Unauthorized):  # a wrong current password is a failed login
        here.change_password("not-my-password", "casey-new-pass-1")
    assert written_since(practice, before) == [FAILED]
    assert elsewhere.me().user_id == casey.user_id  # nothing ended

    here.change_password(casey.password, "casey-new-pass-1")
    with pytest.raises(Unauthorized):
        elsewhere.me()  # the very next request
    assert here.me().user_id == casey.user_id  # the calling session stays
    with pytest.raises(Unauthorized):  # the old password is no longer the current one
        here.change_password(casey.password, "casey-new-pass-2")
    # PUT on one's own id does the same.
    own = {"current_password": "casey-new-pass-1", "new_password": "casey-new-pass-2"}
    assert raw(here, "PUT", f"/users/{casey.user_id}/password", own).status_code == 204
    assert here.me().user_id == casey.user_id
    rows = [r for r in practice.owner().audit(user_id=casey.user_id) if "Password" in r.event_type]
    assert [(r.target_user_id, r.outcome) for r in rows] == [(str(casey.user_id), "success")] * 2


# -- the enrollment story ---------------------------------------------------------------------


def test_a_clinician_enrolls_with_a_code_and_an_administrator_spending_a_reset_code_gets_nothing(
    practice: Practice,
) -> None:
    olive = practice.owner()
    made = olive.create_user("casey", "Dr. Casey", "clinician")
    assert CODE.fullmatch(made.enrollment_code)
    left = made.expires_at - datetime.now(UTC)
    assert timedelta(hours=23, minutes=59) < left <= timedelta(hours=24)
    with pytest.raises(Unauthorized):  # no password until she enrolls
        practice.client().login("casey", made.enrollment_code, "000000")

    enrolled = practice.client().enroll("casey", made.enrollment_code, "caseys-own-pass-1")
    assert enrolled.user_id == made.user_id and enrolled.totp_secret and enrolled.totp_uri
    assert enrolled.totp_uri.startswith("otpauth://totp/Chartledger%3Acasey?secret=")
    secret = auth.from_base32(enrolled.totp_secret)
    caseys = practice.client()
    caseys.login("casey", "caseys-own-pass-1", code_now(secret))
    # The secret is nowhere an administrator looks.
    assert enrolled.totp_secret not in raw(olive, "GET", "/users").text

    # The office manager resets her password: her sessions end, and he holds a code.
    morgan = office_manager(practice, olive)
    manager = morgan.client()
    before = topics(practice)
    reset = manager.reset_user(made.user_id)
    assert CODE.fullmatch(reset.enrollment_code) and not reset.authenticator_reset
    assert written_since(practice, before) == [ISSUED, "domain.users:User.SessionsEnded"]
    with pytest.raises(Unauthorized):
        caseys.me()

    # He spends it himself: a password of his choosing, but no authenticator comes back...
    spent = practice.client().enroll("casey", reset.enrollment_code, "morgans-choice-1")
    assert spent.totp_secret is None and spent.totp_uri is None
    assert TOTP_ENROLLED not in written_since(practice, before)
    # ...so he cannot log in as her: the code is on her phone.
    for code in (None, "000000", auth.totp(b"\0" * 20, int(time.time()))):
        with pytest.raises(Unauthorized):
            practice.client().login("casey", "morgans-choice-1", code)

    # The reset and the code's use, in the audit view, naming both.
    audit = olive.audit(sort_by="position")
    c, m, o = str(made.user_id), str(morgan.user_id), practice.owner_id
    issued = [(r.user_id, r.target_user_id) for r in audit if r.event_type == ISSUED]
    assert issued == [(o, c), (o, m), (m, c)]  # Casey's, Morgan's own, and Morgan's reset
    used = [(r.user_id, r.target_user_id, r.detail) for r in audit if r.event_type == ENROLLED]
    assert used == [
        (None, c, f"enrollment code issued by user {o}"),
        (None, m, f"enrollment code issued by user {o}"),
        (None, c, f"enrollment code issued by user {m}"),  # whoever spent it, Morgan issued it
    ]


# -- the code's rules -------------------------------------------------------------------------


def test_an_enrollment_code_works_once_and_a_newer_one_voids_the_older(practice: Practice) -> None:
    olive = practice.owner()
    made = olive.create_user("casey", "Dr. Casey", "clinician")
    newer = olive.reset_user(made.user_id)  # before she ever enrolled: the first is void
    before = topics(practice)
    with pytest.raises(Unauthorized) as voided:
        practice.client().enroll("casey", made.enrollment_code, "caseys-own-pass-1")
    assert voided.value.problem["detail"] == "wrong credentials"
    assert written_since(practice, before) == [FAILED]

    enrolled = practice.client().enroll("casey", newer.enrollment_code.lower(), "caseys-pass-1")
    assert enrolled.totp_secret is not None
    before = topics(practice)
    with pytest.raises(Unauthorized):  # spent
        practice.client().enroll("casey", newer.enrollment_code, "someone-elses-1")
    assert written_since(practice, before) == [FAILED]
    caseys = practice.client()
    caseys.login("casey", "caseys-pass-1", code_now(auth.from_base32(enrolled.totp_secret)))

    # Bad input is refused before anything is written; an unknown user has nothing to record.
    leaves = practice.leaves()
    short = {"username": "casey", "enrollment_code": newer.enrollment_code, "new_password": "short"}
    with pytest.raises(Unprocessable):  # as sent by a client that does not check (EnrollIn does)
        practice.client().request("POST", "/auth/enroll", json=short)
    for body in ({"username": "casey"}, {"username": "casey", "enrollment_code": "x" * 65,
                                          "new_password": "long-enough-pass"}):  # fmt: skip
        assert practice.http_client().post("/auth/enroll", json=body).status_code == 422
    with pytest.raises(Unauthorized):
        practice.client().enroll("nobody", newer.enrollment_code, "long-enough-pass")
    assert practice.leaves() == leaves


def test_an_enrollment_code_expires(practice: Practice) -> None:
    brief = replace(practice.settings, enrollment_code_lifetime=timedelta(seconds=1))
    with TestClient(create_app(brief), raise_server_exceptions=False) as http:
        olive = Client(http=http)
        olive.login("olive", OWNER_PASSWORD, code_now(practice.totp_secret))
        made = olive.create_user("casey", "Dr. Casey", "clinician")
        assert made.expires_at - datetime.now(UTC) <= timedelta(seconds=1)
    time.sleep(1.2)
    before = topics(practice)
    with pytest.raises(Unauthorized):
        practice.client().enroll("casey", made.enrollment_code, "caseys-own-pass-1")
    assert written_since(practice, before) == [FAILED]


def test_an_enrollment_code_is_kept_only_as_its_hash(practice: Practice) -> None:
    olive = practice.owner()
    made = olive.create_user("casey", "Dr. Casey", "clinician")
    reset = olive.reset_user(made.user_id)
    codes = [made.enrollment_code, reset.enrollment_code]
    issued = events_of_type(practice, ISSUED)
    assert [e.code_hash for e in issued] == [auth.recovery_code_hash(c) for c in codes]  # type: ignore[attr-defined]
    assert not any(c in repr(vars(e)) for e in issued for c in codes)

    # Nor in any stored byte: every column of every event row, as the store holds it.
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    with ledger.db.read() as c:
        c.execute("SELECT * FROM stored_events")
        stored = [bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                  for row in c.fetchall() for v in row]  # fmt: skip
    forms = [f.encode() for code in codes for f in (code, code.replace("-", ""), code.lower())]
    assert stored and not [f for f in forms if any(f in value for value in stored)]


# -- resetting an authenticator ---------------------------------------------------------------


def test_an_authenticator_reset_takes_an_owner_and_an_owners_takes_a_second_owner(
    practice: Practice,
) -> None:
    olive = practice.owner()
    casey = add_member(practice, olive, "casey", "Dr. Casey", "clinician")
    otto = add_member(practice, olive, "otto", "Otto", "owner")
    morgan = office_manager(practice, olive)
    manager = morgan.client()

    before = topics(practice)
    for who, target in ((manager, casey.user_id), (olive, UUID(practice.owner_id))):
        with pytest.raises(Forbidden):
            who.reset_user(target, authenticator=True)
    assert written_since(practice, before) == [REFUSED, REFUSED]
    assert [detail for *_, detail in refusals(olive, UUID(practice.owner_id))] == [
        "reset_authenticator: password and authenticator"
    ]

    # Olive resets Casey's authenticator: Casey's new code enrolls a new one, the old is gone.
    reset = olive.reset_user(casey.user_id, authenticator=True)
    assert reset.authenticator_reset
    enrolled = practice.client().enroll("casey", reset.enrollment_code, "caseys-new-pass-1")
    assert enrolled.totp_secret is not None
    new_secret = auth.from_base32(enrolled.totp_secret)
    assert new_secret != casey.totp_secret
    with pytest.raises(Unauthorized):
        practice.client().login("casey", "caseys-new-pass-1", code_now(casey.totp_secret))
    practice.client().login("casey", "caseys-new-pass-1", code_now(new_secret))

    # Otto, a second owner, resets Olive's; a deactivated user is reset by nobody.
    ottos = otto.client()
    assert ottos.reset_user(UUID(practice.owner_id), authenticator=True).authenticator_reset
    with pytest.raises(Unauthorized):
        olive.me()  # her sessions ended with the reset
    gone = add_member(practice, ottos, "gone", "Gone", "staff")
    ottos.deactivate_user(gone.user_id, "left")
    with pytest.raises(Conflict):
        ottos.reset_user(gone.user_id)


# -- the command line ------------------------------------------------------------------------


@pytest.mark.usefixtures("token_file")
def test_the_remote_cli_creates_resets_enrolls_and_changes_passwords(
    practice: Practice, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": "")  # Enter, when asked
    with served(practice) as url:
        owner_logs_in_remotely(practice, url, capsys)
        create = ["users", "create", "casey", "--name", "Dr. Casey", "--role", "clinician"]
        assert chartledger(["--server", url, *create]) == 0
        out = capsys.readouterr().out
        first = CODE.search(out)
        assert first and "until" in out and "enroll" in out

        monkeypatch.setenv("CHARTLEDGER_ENROLLMENT_CODE", "")
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "caseys-cli-pass-1")
        assert "no enrollment code given" in one_line_refusal(capsys, url, "enroll", "casey")
        monkeypatch.setenv("CHARTLEDGER_ENROLLMENT_CODE", first.group(0))
        assert chartledger(["--server", url, "enroll", "casey"]) == 0
        out = capsys.readouterr().out
        secret = re.search(r"^  totp secret:  ([A-Z2-7]+)$", out, re.MULTILINE)
        assert secret and "otpauth://totp/" in out
        assert "401" in one_line_refusal(capsys, url, "enroll", "casey")  # spent

        # Reset by username: a new code; an unknown user is misuse in one line.
        assert chartledger(["--server", url, "users", "reset", "casey"]) == 0
        second = CODE.search(capsys.readouterr().out)
        assert second and second.group(0) != first.group(0)
        assert "no user with the username" in one_line_refusal(
            capsys, url, "users", "reset", "nobody"
        )
        monkeypatch.setenv("CHARTLEDGER_ENROLLMENT_CODE", second.group(0))
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "caseys-cli-pass-2")
        assert chartledger(["--server", url, "enroll", "casey"]) == 0
        assert "totp secret" not in capsys.readouterr().out  # she keeps her authenticator

        # Casey changes her own password; then, a clinician, she creates nobody.
        monkeypatch.setenv("CHARTLEDGER_PASSWORD", "caseys-cli-pass-2")
        totp = code_now(auth.from_base32(secret.group(1)))
        assert chartledger(["--server", url, "login", "casey", "--totp", totp]) == 0
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "caseys-cli-pass-3")
        assert chartledger(["--server", url, "password"]) == 0
        assert "other session" in capsys.readouterr().out
        assert "401" in one_line_refusal(capsys, url, "password")  # the old one is not current
        mint = ["users", "create", "mallory", "--name", "M", "--role", "owner"]
        assert "403" in one_line_refusal(capsys, url, *mint)
