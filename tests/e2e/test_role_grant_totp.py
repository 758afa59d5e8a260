"""Granting roles over HTTP with the thin client (and the remote CLI), on both stores: every
user enrolled their own authenticator with their enrollment code, so a grant never enrolls
anyone and its answer never holds a secret. Casey, a clinician made an owner, keeps logging in
with her own authenticator and may issue herself recovery codes. A grant the rules refuse is
recorded and changes nothing.
"""

from __future__ import annotations

import getpass
from uuid import UUID, uuid4

import pytest

from api import auth
from api.cli import main as chartledger
from api.client import Conflict, Forbidden, NotFound, Unprocessable
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    office_manager,
    one_line_refusal,
    owner_logs_in_remotely,
)
from tests.e2e.test_auth import topics
from tests.e2e.test_recovery_approval import REFUSED, served, written_since

GRANTED = "domain.users:User.RoleGranted"
ENROLLED = "domain.credentials:Account.TotpEnrolled"
CASEY = "casey"


def test_a_clinician_made_owner_keeps_her_own_authenticator_and_no_secret_is_shown(
    practice: Practice,
) -> None:
    olive = practice.owner()
    casey_member = add_member(practice, olive, CASEY, "Dr. Casey", "clinician")
    casey_id = casey_member.user_id

    before = topics(practice)
    answer = olive.request("POST", f"/users/{casey_id}/roles", json={"role": "owner"}).json()
    assert answer["roles"] == ["clinician", "owner"]
    assert "totp_secret" not in answer and "totp_uri" not in answer
    assert written_since(practice, before) == [GRANTED]  # the role, and nothing else

    casey = casey_member.client()  # the authenticator she enrolled herself
    assert casey.me().roles == ["clinician", "owner"]
    # A session started with a TOTP code: the new owner issues her own recovery codes.
    assert casey.me().recovery_codes_remaining == 0
    assert len(casey.issue_recovery_codes(casey_member.password).recovery_codes) == 10

    # Granting it again changes nothing, and writes nothing.
    leaves = practice.leaves()
    with pytest.raises(Conflict):
        olive.grant_role(casey_id, "owner")
    assert practice.leaves() == leaves
    assert ENROLLED not in written_since(practice, before)


def test_grants_the_rules_refuse_write_only_what_they_did_before_and_enroll_nobody(
    practice: Practice,
) -> None:
    olive = practice.owner()
    morgan = office_manager(practice, olive)
    casey_member = add_member(practice, olive, CASEY, "Dr. Casey", "clinician")
    casey_id = casey_member.user_id
    gone_id = olive.create_user("gone", "Gone", "staff").user_id
    olive.deactivate_user(gone_id, "left the practice")
    manager = morgan.client()
    casey = casey_member.client()

    # Refused by the rules: a 403, recorded, as before; nobody enrolled.
    before = topics(practice)
    attempts = [
        lambda: manager.grant_role(casey_id, "owner"),  # only an owner grants owner
        lambda: manager.grant_role(casey_id, "risk_manager"),  # nor a risk manager
        lambda: manager.grant_role(morgan.user_id, "clinician"),  # nor their own roles
        lambda: manager.grant_role(UUID(practice.owner_id), "risk_manager"),  # nor an owner's
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.type.endswith(":not-permitted")
    assert written_since(practice, before) == [REFUSED] * len(attempts)

    # A clinician administers no users: refused and recorded the same way.
    before = topics(practice)
    with pytest.raises(Forbidden):
        casey.grant_role(casey_id, "owner")
    assert written_since(practice, before) == [REFUSED]

    # Refused by the input or by the user's state: nothing written at all.
    leaves = practice.leaves()
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

    # Casey and Morgan still log in as they did, with their own authenticators.
    casey_member.client()
    morgan.client()
    assert ENROLLED not in written_since(practice, before)


@pytest.mark.usefixtures("token_file")
def test_the_remote_cli_grant_shows_no_secret_and_recover_refuses_bad_input_in_one_line(
    practice: Practice,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    olive = practice.owner()
    casey_member = add_member(practice, olive, CASEY, "Dr. Casey", "clinician")
    casey_id = casey_member.user_id
    sam_id = olive.create_user("sam", "Sam", "staff").user_id
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)

    with served(practice) as url:
        owner_logs_in_remotely(practice, url, capsys)

        # Made an owner: no secret, and the recovery-codes advice.
        assert chartledger(["--server", url, "users", "grant", str(casey_id), "owner"]) == 0
        out = capsys.readouterr().out
        assert "totp" not in out and "`recovery-codes`" in out
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
        # (A password the server's rule refuses, stated in its schema: refused before sending.)
        monkeypatch.setenv("CHARTLEDGER_RECOVERY_CODE", practice.recovery_codes[0])
        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "short")
        assert "new_password" in one_line_refusal(capsys, url, "recover", OWNER)
        assert practice.leaves() == leaves

        monkeypatch.setenv("CHARTLEDGER_NEW_PASSWORD", "olive-cli-password")
        assert chartledger(["--server", url, "recover", OWNER]) == 0
        assert f"Recovered {OWNER}" in capsys.readouterr().out

    assert casey_member.client().me().roles == ["clinician", "owner"]
