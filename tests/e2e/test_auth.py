"""Logging in with TOTP, lockout, logout, idle timeout, revocation and recovery, over HTTP."""

from __future__ import annotations

from uuid import UUID

import pytest

from api.client import Forbidden, TooManyRequests, Unauthorized
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    backdate_session,
    code_now,
)


def topics(practice: Practice, stream_prefix: str = "domain.") -> list[str]:
    ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    with ledger.db.read() as c:
        c.execute(
            "SELECT l.position, e.topic FROM ledger_leaves l JOIN stored_events e "
            "ON e.originator_id = l.stream AND e.originator_version = l.version "
            "ORDER BY l.position"
        )
        return [t for _, t in c.fetchall() if t.startswith(stream_prefix)]


def test_an_owner_logs_in_with_a_totp_code_and_not_without(practice: Practice) -> None:
    client = practice.client()
    with pytest.raises(Unauthorized) as missing:
        client.login(OWNER, OWNER_PASSWORD)
    assert missing.value.problem["detail"] == "wrong credentials"
    with pytest.raises(Unauthorized):
        client.login(OWNER, OWNER_PASSWORD, "000000")
    client.login(OWNER, OWNER_PASSWORD, code_now(practice.totp_secret))
    me = client.me()
    assert me.roles == ["owner"] and str(me.user_id) == practice.owner_id
    assert topics(practice).count("domain.credentials:Account.LoginFailed") == 2
    assert "domain.credentials:Account.LoggedIn" in topics(practice)
    assert "domain.sessions:Session.Started" in topics(practice)


def test_no_request_passes_without_a_live_session(practice: Practice) -> None:
    client = practice.client()
    for token in (None, "nonsense", "clt_" + "0" * 32 + ".x"):
        client.token = token
        with pytest.raises(Unauthorized):
            client.me()


def test_five_failures_make_that_address_wait_even_with_the_right_password_not_another(
    practice: Practice,
) -> None:
    client = practice.client()
    for _ in range(4):
        with pytest.raises(Unauthorized):
            client.login(OWNER, "wrong-password-x", "000000")
    with pytest.raises(TooManyRequests) as waits:
        client.login(OWNER, "wrong-password-x", "000000")
    assert int(waits.value.problem["status"]) == 429
    with pytest.raises(TooManyRequests):
        client.login(OWNER, OWNER_PASSWORD, code_now(practice.totp_secret))
    practice.client("198.51.100.10").login(OWNER, OWNER_PASSWORD, code_now(practice.totp_secret))
    assert topics(practice).count("domain.credentials:Account.LoginFailed") == 5
    assert "domain.credentials:Account.LockedOut" not in topics(practice)


def test_logout_ends_the_session(practice: Practice) -> None:
    client = practice.owner()
    token = client.token
    client.logout()
    client.token = token
    with pytest.raises(Unauthorized):
        client.me()
    assert "domain.sessions:Session.Ended" in topics(practice)


def test_an_idle_session_ends(practice: Practice) -> None:
    client = practice.owner()
    key = str(client.me().session_id)
    services = practice.http.app.state.services  # type: ignore[attr-defined]
    seen = services.last_seen.get(key, 0.0)
    assert seen > 0
    backdate_session(services, key, seen - practice.settings.idle_timeout.total_seconds() - 1)
    with pytest.raises(Unauthorized):
        client.me()


def test_revoking_a_user_ends_their_live_session_at_the_next_request(practice: Practice) -> None:
    owner = practice.owner()
    casey = add_member(practice, owner, "casey", "Dr. Casey", "clinician")
    clinician = casey.client()
    assert clinician.me().roles == ["clinician"]
    owner.deactivate_user(casey.user_id, "left the practice")
    with pytest.raises(Unauthorized):
        clinician.me()
    with pytest.raises(Unauthorized):
        practice.client().login("casey", casey.password, code_now(casey.totp_secret))


@pytest.mark.parametrize("role", ["clinician", "staff", "auditor", "risk_manager"])
def test_every_role_needs_its_totp_code(practice: Practice, role: str) -> None:
    member = add_member(practice, practice.owner(), "rita", "Rita", role)
    client = practice.client()
    with pytest.raises(Unauthorized):
        client.login("rita", member.password)
    with pytest.raises(Unauthorized):
        client.login("rita", member.password, "000000")
    client.login("rita", member.password, code_now(member.totp_secret))


def test_only_owners_administer_users_and_the_last_owner_stays(practice: Practice) -> None:
    owner = practice.owner()
    sam = add_member(practice, owner, "sam", "Sam", "staff")
    staff_id = sam.user_id
    staff = sam.client()
    with pytest.raises(Forbidden):
        staff.users()
    with pytest.raises(Forbidden):
        staff.request(
            "PUT", f"/users/{practice.owner_id}/password", json={"password": "taken-over-pass"}
        )
    with pytest.raises(Forbidden) as last:
        owner.deactivate_user(UUID(practice.owner_id), "oops")
    assert "at least one active owner" in last.value.problem["detail"]
    with pytest.raises(Forbidden):
        owner.revoke_role(UUID(practice.owner_id), "owner")
    owner.grant_role(staff_id, "auditor")
    assert {u.username: u.roles for u in owner.users()}["sam"] == ["staff", "auditor"]


def test_an_owner_whose_password_was_reset_gets_back_in_with_a_recovery_code(
    practice: Practice,
) -> None:
    first = practice.owner()
    second = add_member(practice, first, "otto", "Otto", "owner")
    otto = second.client()
    otto.reset_user(UUID(practice.owner_id))  # otto keeps the code to himself
    with pytest.raises(Unauthorized):
        first.me()  # her sessions ended when someone else reset her password
    with pytest.raises(Unauthorized):
        practice.client().login(OWNER, OWNER_PASSWORD, code_now(practice.totp_secret))
    locked_out = practice.client()
    with pytest.raises(Unauthorized):
        locked_out.recover(OWNER, "AAAAA-AAAAA-AAAAA-AAAAA", "back-in-control")
    code = practice.recovery_codes[0]
    locked_out.recover(OWNER, code, "back-in-control")
    assert str(locked_out.me().user_id) == practice.owner_id
    with pytest.raises(Unauthorized):
        practice.client().recover(OWNER, code, "once-only-please")
    locked_out.deactivate_user(second.user_id, "changed my password")
    with pytest.raises(Unauthorized):
        otto.me()
    assert "domain.credentials:Account.RecoveryCodeUsed" in topics(practice)
