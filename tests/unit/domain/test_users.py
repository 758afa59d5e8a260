from __future__ import annotations

import pytest

from domain.base import user_subject
from domain.errors import InvalidEntry, UnknownRole, UserStateError
from domain.users import ROLES, User
from tests.unit.domain.memory import AT, Memory, assert_round_trips, subjects


def test_the_roles_are_the_five_of_the_issue() -> None:
    assert ROLES == ("owner", "clinician", "staff", "risk_manager", "auditor", "user_admin")


def test_a_user_is_registered_with_one_known_role() -> None:
    user = User.register(name="Dr. A", role="clinician")
    assert user.roles == ("clinician",) and user.has_role("clinician") and user.active


@pytest.mark.parametrize("role", ["admin", "Owner", "", None])
def test_an_unknown_role_is_refused(role: object) -> None:
    with pytest.raises(UnknownRole, match=r"^role must be one of owner, clinician"):
        User.register(name="x", role=role)  # type: ignore[arg-type]
    with pytest.raises(UnknownRole):
        User.register(name="x", role="staff").grant_role(role)  # type: ignore[arg-type]


def test_unknown_role_is_an_invalid_entry() -> None:
    assert issubclass(UnknownRole, InvalidEntry)


def test_a_role_is_granted_once_and_revoked_only_if_held() -> None:
    user = User.register(name="x", role="staff")
    user.grant_role("auditor")
    with pytest.raises(UserStateError, match="already has role auditor"):
        user.grant_role("auditor")
    user.revoke_role("staff")
    with pytest.raises(UserStateError, match="does not have role staff"):
        user.revoke_role("staff")
    assert user.roles == ("auditor",)


def test_a_deactivated_user_holds_no_role_and_changes_no_more() -> None:
    user = User.register(name="x", role="owner")
    user.deactivate(reason="left the practice", at=AT)
    assert not user.has_role("owner")
    with pytest.raises(UserStateError, match="is deactivated"):
        user.grant_role("staff")
    with pytest.raises(UserStateError):
        user.deactivate(reason="again", at=AT)


def test_a_users_events_concern_that_user_and_replay(memory: Memory) -> None:
    user = User.register(name="x", role="staff")
    user.grant_role("risk_manager")
    user.deactivate(reason="left", at=AT)
    assert_round_trips(memory, user)
    assert subjects(memory, user) == {(user_subject(user.id),)}
