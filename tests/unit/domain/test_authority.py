"""Who may grant what (domain/authority.py): owners anything; a user administrator clinician and
staff users and roles only, never their own; an authenticator reset takes an owner, and an
owner's a second owner."""

from __future__ import annotations

import pytest

from domain.authority import (
    check_may_administer,
    check_may_grant,
    check_may_reset,
    check_may_reset_authenticator,
)
from domain.errors import NotPermitted
from domain.users import ROLES, User
from tests.unit.domain.memory import AT


def user(*roles: str) -> User:
    made = User.register(name="x", role=roles[0])
    for role in roles[1:]:
        made.grant_role(role)
    return made


def test_an_owner_grants_any_role_and_administers_anyone() -> None:
    owner = user("owner")
    for role in ROLES:
        check_may_grant(owner, role)
        target = user(role)
        check_may_administer(owner, target)
        check_may_grant(owner, role, target)
        check_may_reset(owner, target)


@pytest.mark.parametrize("role", ["risk_manager", "auditor", "user_admin", "owner"])
def test_a_user_administrator_neither_grants_nor_touches_a_role_beyond_clinician_and_staff(
    role: str,
) -> None:
    admin, clinician = user("staff", "user_admin"), user("clinician")
    with pytest.raises(NotPermitted, match=f"only an owner may grant or revoke the role {role}"):
        check_may_grant(admin, role)
    with pytest.raises(NotPermitted, match=f"only an owner may grant or revoke the role {role}"):
        check_may_grant(admin, role, clinician)
    holder = user("clinician", role)  # one role beyond theirs is enough
    for check in (check_may_administer, check_may_reset):
        with pytest.raises(NotPermitted, match=f"administers only clinician and staff.*{role}"):
            check(admin, holder)


def test_a_user_administrator_administers_clinicians_and_staff_but_never_themselves() -> None:
    admin = user("staff", "user_admin")
    for target in (user("clinician"), user("staff"), user("clinician", "staff")):
        check_may_administer(admin, target)
        check_may_reset(admin, target)
        check_may_grant(admin, "staff", target)
    with pytest.raises(NotPermitted, match="their own"):
        check_may_administer(admin, admin)
    with pytest.raises(NotPermitted, match="their own roles"):
        check_may_grant(admin, "clinician", admin)


def test_nobody_else_administers_and_nobody_resets_themselves() -> None:
    for role in ("clinician", "staff", "risk_manager", "auditor"):
        with pytest.raises(NotPermitted):
            check_may_administer(user(role), user("clinician"))
        with pytest.raises(NotPermitted):
            check_may_grant(user(role), "staff")
    owner = user("owner")
    with pytest.raises(NotPermitted, match="your own password"):
        check_may_reset(owner, owner)
    gone = user("owner")
    gone.deactivate(reason="left", at=AT)
    with pytest.raises(NotPermitted, match="deactivated"):
        check_may_grant(gone, "staff")


def test_an_authenticator_is_reset_by_an_owner_with_a_totp_session_never_their_own() -> None:
    owner, other_owner, clinician = user("owner"), user("owner"), user("clinician")
    check_may_reset_authenticator(owner, clinician, session_method="password+totp")
    check_may_reset_authenticator(owner, other_owner, session_method="password+totp")
    with pytest.raises(NotPermitted, match="second owner"):
        check_may_reset_authenticator(owner, owner, session_method="password+totp")
    with pytest.raises(NotPermitted, match="TOTP code"):
        check_may_reset_authenticator(owner, clinician, session_method="recovery_code")
    with pytest.raises(NotPermitted, match="only an owner"):
        check_may_reset_authenticator(user("staff", "user_admin"), clinician,
                                      session_method="password+totp")  # fmt: skip
