"""The office-manager story, over HTTP with the thin client, on both stores.

An owner makes a staff member a user administrator. The office manager may create, reset and
deactivate clinician and staff users, but setting anyone's password, deactivating or demoting an
owner and promoting themselves are refused (403), each attempt a ledger event. Failing the owner's
login until it locks does lock it, and the owner gets back in with a recovery code and revokes
the office manager: their session ends at once. The audit view tells the whole story.
"""

from __future__ import annotations

import pytest

from api.client import Forbidden, TooManyRequests, Unauthorized
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    code_now,
    lock_out,
    office_manager,
)


def test_a_user_administrator_cannot_take_the_practice_from_its_owners(
    practice: Practice,
) -> None:
    owner = practice.owner()
    olive = owner.me().user_id
    morgan = office_manager(practice, owner)
    manager = morgan.client()

    # What a user administrator is for: clinician and staff users.
    casey = manager.create_user("casey", "Dr. Casey", "clinician")
    manager.grant_role(casey.user_id, "staff")
    assert manager.reset_user(casey.user_id).enrollment_code != casey.enrollment_code
    assert not manager.deactivate_user(casey.user_id, "left the practice").active
    assert {u.username for u in manager.users()} == {"olive", "morgan", "casey"}

    # What it is not for: owners, and its own powers.
    attempts = [
        lambda: manager.request(
            "PUT", f"/users/{olive}/password", json={"password": "taken-over-pass-1"}
        ),
        lambda: manager.reset_user(olive),
        lambda: manager.deactivate_user(olive, "owner retired"),
        lambda: manager.revoke_role(olive, "owner"),
        lambda: manager.grant_role(morgan.user_id, "owner"),
        lambda: manager.create_user("mallory", "Mallory", "owner"),
        lambda: manager.create_user("max", "Max", "user_admin"),
    ]
    for attempt in attempts:
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert refused.value.type.endswith("not-permitted")

    # Locking the owner out by failing their login does work for a while...
    lock_out(practice, OWNER)
    with pytest.raises(TooManyRequests):
        practice.client().login(OWNER, OWNER_PASSWORD, "000000")  # refused before the code

    # ...until the owner comes back with a recovery code and revokes the office manager.
    back = practice.client()
    back.recover(OWNER, practice.recovery_codes[0], "owner-password-2")
    assert back.me().user_id == olive
    with pytest.raises(Unauthorized):
        owner.me()  # the owner's older sessions ended with the recovery
    assert not back.deactivate_user(morgan.user_id, "tried to take over the practice").active
    with pytest.raises(Unauthorized):
        manager.users()  # the very next request
    with pytest.raises(Unauthorized):
        morgan.login()
    fresh = practice.client()
    fresh.login(OWNER, "owner-password-2", code_now(practice.totp_secret))

    # The whole story, in the audit view.
    story = [
        (r.user_id, r.event_type.partition(":")[2], r.outcome)
        for r in fresh.audit(sort_by="position")
        if r.data_category == "users"
    ]
    m, o = str(morgan.user_id), str(olive)
    refusals = [s for s in story if s[1] == "RefusedAttempt.Refused"]
    assert refusals == [(m, "RefusedAttempt.Refused", "failure")] * len(attempts)
    assert (o, "User.RoleGranted", "success") in story  # olive made morgan a user admin
    assert (m, "User.Deactivated", "success") in story  # morgan deactivated casey
    # Nobody was logged in to lock olive out: the lockout is filed under her account (issue 17).
    assert (o, "Account.LockedOut", "failure") in story
    assert (o, "Account.RecoveryCodeUsed", "success") in story
    assert story.index((o, "Account.RecoveryCodeUsed", "success")) < story.index(
        (o, "User.Deactivated", "success")
    )
    rows = fresh.audit(user_id=morgan.user_id, sort_by="position")
    # His refused attempts, then, once deactivated, his session's next request and his login.
    assert [(r.event_type, r.reason) for r in rows if r.outcome == "failure"][len(attempts) :] == [
        ("domain.sessions:Session.RequestRefused", "revoked"),
        ("domain.credentials:Account.LoginFailed", "inactive"),
    ]
    assert [r.event_type for r in rows if r.outcome == "failure"][: len(attempts)] == [
        "domain.credentials:RefusedAttempt.Refused"
    ] * len(attempts)
