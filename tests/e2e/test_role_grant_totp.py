"""A user granted a role that needs a TOTP code at login is enrolled there and then, over HTTP
with the thin client (and the remote CLI), on both stores.

Casey, a clinician, logs in with her password alone until Olive makes her an owner: the grant's
answer holds her new TOTP secret, once, for Olive to hand over in person, as a new owner's
account would. From then on Casey logs in with her password and a code, and may issue herself
recovery codes. Sam, on the front desk, made a risk manager by the office manager, likewise.
Rita, a risk manager from the start, already has a secret: making her an owner leaves it as it
is. A grant the rules refuse is recorded as before and enrolls nobody. The audit view shows who
enrolled whom.
"""

from __future__ import annotations

import getpass
import re
from uuid import UUID, uuid4

import pytest

from api import auth
from api.cli import main as chartledger
from api.client import Conflict, Forbidden, NotFound, Unauthorized, Unprocessable
from tests.e2e.conftest import (
    MANAGER,
    MANAGER_PASSWORD,
    OWNER,
    OWNER_PASSWORD,
    Practice,
    events_of_type,
    office_manager,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_auth import topics
from tests.e2e.test_recovery_approval import REFUSED, logged_in, served, written_since

GRANTED = "domain.users:User.RoleGranted"
ENROLLED = "domain.credentials:Account.TotpEnrolled"
CASEY, CASEY_PASSWORD = "casey", "clinician-pass-1"


def test_a_clinician_made_owner_gets_a_totp_secret_once_and_logs_in_with_it(
    practice: Practice,
) -> None:
    olive = practice.owner()
    casey_id = olive.create_user(CASEY, "Dr. Casey", "clinician", CASEY_PASSWORD).user_id
    logged_in(practice, CASEY, CASEY_PASSWORD, None)  # a clinician needs no code

    before = topics(practice)
    granted = olive.grant_role(casey_id, "owner")
    assert granted.user_id == casey_id and granted.roles == ["clinician", "owner"]
    assert granted.totp_secret and granted.totp_uri
    assert granted.totp_uri.startswith(f"otpauth://totp/Chartledger%3A{CASEY}?secret=")
    assert f"secret={granted.totp_secret}&" in granted.totp_uri
    # One transaction: the role and the second factor it needs, nothing else.
    assert written_since(practice, before) == [GRANTED, ENROLLED]
    secret = auth.from_base32(granted.totp_secret)

    # Kept in the account's sealed payload (it checks codes), enrolled by the granting owner.
    latest = events_of_type(practice, ENROLLED)[-1]
    assert latest.secret == secret and latest.by == UUID(practice.owner_id)  # type: ignore[attr-defined]
    # Shown only in the grant's answer: the list of users never shows it.
    assert granted.totp_secret not in olive.request("GET", "/users").text

    with pytest.raises(Unauthorized) as no_code:
        practice.client().login(CASEY, CASEY_PASSWORD)
    assert no_code.value.problem["detail"] == "wrong credentials"
    with pytest.raises(Unauthorized):
        practice.client().login(CASEY, CASEY_PASSWORD, "000000")
    casey = logged_in(practice, CASEY, CASEY_PASSWORD, secret)
    assert casey.me().roles == ["clinician", "owner"]
    # A session started with a TOTP code: the new owner issues her own recovery codes.
    assert casey.me().recovery_codes_remaining == 0
    assert len(casey.issue_recovery_codes(CASEY_PASSWORD).recovery_codes) == 10

    # Granting it again changes nothing, and writes nothing.
    leaves = practice.leaves()
    with pytest.raises(Conflict):
        olive.grant_role(casey_id, "owner")
    assert practice.leaves() == leaves

    # The story in the audit view: Olive granted the role and enrolled Casey, side by side.
    rows = [r for r in olive.audit(sort_by="position") if r.data_category == "users"]
    story = [(r.user_id, r.event_type, r.action, r.outcome) for r in rows]
    o = practice.owner_id
    step = story.index((o, GRANTED, "change", "success"))
    assert story[step + 1] == (o, ENROLLED, "change", "success")
    assert rows[step].source == rows[step + 1].source == str(olive.me().session_id)


def test_a_front_desk_member_made_risk_manager_gets_a_totp_secret_too(
    practice: Practice,
) -> None:
    olive = practice.owner()
    morgan = office_manager(olive)
    sam_id = olive.create_user("sam", "Sam", "staff", "staff-password-1").user_id
    manager = logged_in(practice, MANAGER, MANAGER_PASSWORD, None)

    # A user administrator may grant it (not an owner's role), and hands the secret over.
    before = topics(practice)
    granted = manager.grant_role(sam_id, "risk_manager")
    assert granted.roles == ["staff", "risk_manager"] and granted.totp_secret
    assert written_since(practice, before) == [GRANTED, ENROLLED]
    assert events_of_type(practice, ENROLLED)[-1].by == morgan.user_id  # type: ignore[attr-defined]

    with pytest.raises(Unauthorized):
        practice.client().login("sam", "staff-password-1")
    sam = logged_in(practice, "sam", "staff-password-1", auth.from_base32(granted.totp_secret))
    sam.audit(user_id=sam_id)  # what a risk manager is for: the audit view
    rows = olive.audit(user_id=morgan.user_id, sort_by="position")
    story = [(r.event_type, r.outcome) for r in rows if r.data_category == "users"]
    assert story[-2:] == [(GRANTED, "success"), (ENROLLED, "success")]


def test_a_user_who_already_has_totp_keeps_it_and_gets_no_secret(practice: Practice) -> None:
    olive = practice.owner()
    rita = olive.create_user("rita", "Rita Risk", "risk_manager", "risk-manager-pw-1")
    assert rita.totp_secret is not None
    old_secret = auth.from_base32(rita.totp_secret)
    logged_in(practice, "rita", "risk-manager-pw-1", old_secret)

    before = topics(practice)
    granted = olive.grant_role(rita.user_id, "owner")
    assert granted.roles == ["risk_manager", "owner"]
    assert granted.totp_secret is None and granted.totp_uri is None
    assert written_since(practice, before) == [GRANTED]
    # Taken away and given back: still her secret, still none shown.
    olive.revoke_role(rita.user_id, "risk_manager")
    assert olive.grant_role(rita.user_id, "risk_manager").totp_secret is None
    assert ENROLLED not in written_since(practice, before)

    rita_now = logged_in(practice, "rita", "risk-manager-pw-1", old_secret)
    assert rita_now.me().roles == ["owner", "risk_manager"]

    # A role that needs no code enrolls nobody, and the user still logs in without one.
    casey_id = olive.create_user(CASEY, "Dr. Casey", "clinician", CASEY_PASSWORD).user_id
    before = topics(practice)
    assert olive.grant_role(casey_id, "auditor").totp_secret is None
    assert written_since(practice, before) == [GRANTED]
    logged_in(practice, CASEY, CASEY_PASSWORD, None)


def test_grants_the_rules_refuse_write_only_what_they_did_before_and_enroll_nobody(
    practice: Practice,
) -> None:
    olive = practice.owner()
    morgan = office_manager(olive)
    casey_id = olive.create_user(CASEY, "Dr. Casey", "clinician", CASEY_PASSWORD).user_id
    gone_id = olive.create_user("gone", "Gone", "staff", "gone-password-1").user_id
    olive.deactivate_user(gone_id, "left the practice")
    manager = logged_in(practice, MANAGER, MANAGER_PASSWORD, None)
    casey = logged_in(practice, CASEY, CASEY_PASSWORD, None)

    # Refused by the rules: a 403, recorded, as before; nobody enrolled.
    before = topics(practice)
    attempts = [
        lambda: manager.grant_role(casey_id, "owner"),  # only an owner grants owner
        lambda: manager.grant_role(morgan.user_id, "risk_manager"),  # nor their own roles
        lambda: manager.grant_role(UUID(practice.owner_id), "risk_manager"),  # nor an owner's
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.type.endswith(":not-permitted")
    assert written_since(practice, before) == [REFUSED] * len(attempts)

    # Refused before the rules are asked, or by the user's state: nothing written at all.
    leaves = practice.leaves()
    with pytest.raises(Forbidden):  # a clinician administers no users
        casey.grant_role(casey_id, "owner")
    with pytest.raises(Unprocessable):
        olive.grant_role(casey_id, "superuser")
    with pytest.raises(NotFound):
        olive.grant_role(uuid4(), "owner")
    with pytest.raises(Conflict):  # a deactivated user is granted nothing
        olive.grant_role(gone_id, "owner")
    for body in ({}, {"role": "owner", "totp_secret": "AAAA"}, []):
        with pytest.raises(Unprocessable):
            olive.request("POST", f"/users/{casey_id}/roles", json=body)
    assert practice.leaves() == leaves

    # Casey and Morgan still log in as they did, without a code.
    logged_in(practice, CASEY, CASEY_PASSWORD, None)
    logged_in(practice, MANAGER, MANAGER_PASSWORD, None)
    assert ENROLLED not in written_since(practice, before)


@pytest.mark.usefixtures("token_file")
def test_the_remote_cli_grant_shows_the_secret_and_recover_refuses_bad_input_in_one_line(
    practice: Practice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    olive = practice.owner()
    casey_id = olive.create_user(CASEY, "Dr. Casey", "clinician", CASEY_PASSWORD).user_id
    sam_id = olive.create_user("sam", "Sam", "staff", "staff-password-1").user_id
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)

    with served(practice) as url:
        owner_logs_in_remotely(practice, url, capsys)

        # Made an owner: the secret under init's wording, once, and the recovery-codes advice.
        assert chartledger(["--server", url, "users", "grant", str(casey_id), "owner"]) == 0
        out = capsys.readouterr().out
        secret = re.search(r"^  totp secret:  ([A-Z2-7]+)$", out, re.MULTILINE)
        uri = re.search(r"^  totp uri:     (otpauth://totp/\S+)$", out, re.MULTILINE)
        assert secret and uri and f"secret={secret.group(1)}&" in uri.group(1)
        assert "hand it to them in person" in out and "`recovery-codes`" in out
        # A role needing no code: no secret printed.
        assert chartledger(["--server", url, "users", "grant", str(sam_id), "auditor"]) == 0
        assert "totp" not in capsys.readouterr().out
        # Granted again: she has it.
        assert "409" in one_line_refusal(capsys, url, "users", "grant", str(casey_id), "owner")

        # recover and recover-approved: what nobody could send is misuse, in one line, and
        # nothing reaches the server (nothing written, no failed login counted).
        leaves = practice.leaves()
        monkeypatch.setattr(getpass, "getpass", lambda prompt="": "")  # Enter, when asked
        monkeypatch.setenv("CHARTLEDGER_RECOVERY_CODE", practice.recovery_codes[0])
        monkeypatch.setenv("CHARTLEDGER_APPROVAL_CODE", "AAAAA-AAAAA-AAAAA-AAAAA")
        for command in ("recover", "recover-approved"):
            monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "")
            assert "no new password given" in one_line_refusal(capsys, url, command, OWNER)
            monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "x" * (auth.MAX_PASSWORD + 1))
            too_long = one_line_refusal(capsys, url, command, OWNER)
            assert f"new password is longer than {auth.MAX_PASSWORD} characters" in too_long
            assert "x" * 20 not in too_long
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "olive-cli-password")
        monkeypatch.setenv("CHARTLEDGER_RECOVERY_CODE", "")
        assert "no recovery code given" in one_line_refusal(capsys, url, "recover", OWNER)
        monkeypatch.setenv("CHARTLEDGER_APPROVAL_CODE", "A" * 65)
        assert "approval code is longer than 64" in one_line_refusal(
            capsys, url, "recover-approved", OWNER
        )
        assert practice.leaves() == leaves
        # (A password the server's rule refuses is still the server's one-line 422.)
        monkeypatch.setenv("CHARTLEDGER_RECOVERY_CODE", practice.recovery_codes[0])
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "short")
        assert "422" in one_line_refusal(capsys, url, "recover", OWNER)
        assert practice.leaves() == leaves

        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "olive-cli-password")
        assert chartledger(["--server", url, "recover", OWNER]) == 0
        assert f"Recovered {OWNER}" in capsys.readouterr().out

    casey = logged_in(practice, CASEY, CASEY_PASSWORD, auth.from_base32(secret.group(1)))
    assert casey.me().roles == ["clinician", "owner"]
