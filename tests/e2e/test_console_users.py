"""The console's users pages over HTTP, on both stores (issue 18): the API's rules apply
(``domain/authority.py``), refusals are shown in words and recorded, and a page a role may not
see is refused and recorded as the API records it. tests/browser/test_console_users.py drives
the same pages in chromium."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    events_of_type,
    office_manager,
)
from tests.e2e.console import form_token, member_signs_in, sign_in

CODE = re.compile(r'aria-label="Enrollment code">([A-Z2-7]{5}(?:-[A-Z2-7]{5}){3})<')
REFUSED_ATTEMPT = "domain.credentials:RefusedAttempt.Refused"
ROLE_REFUSED = "domain.refusals:RoleRefusal.Refused"


def owner_tab(practice: Practice) -> TestClient:
    return sign_in(practice, OWNER, OWNER_PASSWORD, practice.totp_secret)


def post(tab: TestClient, path: str, **fields: str):
    token = form_token(tab.get("/console/users").text)
    return tab.post(path, data={"csrf_token": token, **fields})


def test_an_owner_creates_a_user_whose_code_enrolls_them(practice: Practice) -> None:
    tab = owner_tab(practice)
    page = post(tab, "/console/users", username="rita", name="Rita Risk", role="risk_manager")
    assert page.status_code == 200, page.text
    code = CODE.search(page.text)
    assert code, page.text
    assert "shown only once" in page.text
    enrolled = practice.client().enroll("rita", code.group(1), "rita-password-1")
    assert enrolled.totp_secret is not None
    listed = tab.get("/console/users").text
    assert "Rita Risk" in listed and "risk manager" in listed


def test_a_user_administrator_cannot_make_a_risk_manager_and_is_told_why(
    practice: Practice,
) -> None:
    owner = practice.owner()
    manager = office_manager(practice, owner)
    tab = member_signs_in(manager)
    before = len(owner.users())
    page = post(tab, "/console/users", username="rick", name="Rick Risk", role="risk_manager")
    assert page.status_code == 403
    assert 'role="alert"' in page.text and "Not permitted" in page.text
    assert not CODE.search(page.text)
    assert len(owner.users()) == before  # nobody was made
    (attempt,) = events_of_type(practice, REFUSED_ATTEMPT)
    assert attempt.actor_id == manager.user_id  # type: ignore[attr-defined]
    assert attempt.action == "create_user"  # type: ignore[attr-defined]
    # The form keeps what was typed.
    assert 'value="rick"' in page.text and 'value="Rick Risk"' in page.text


def test_an_invalid_field_is_named_and_nothing_is_written(practice: Practice) -> None:
    tab = owner_tab(practice)
    before = practice.leaves()
    page = post(tab, "/console/users", username="bad name!", name=" ", role="staff")
    assert page.status_code == 422
    assert "Some fields are missing or invalid" in page.text
    assert "name, username" in page.text
    assert practice.leaves() == before


def test_roles_reset_and_deactivation_through_the_console(practice: Practice) -> None:
    owner = practice.owner()
    sam = add_member(practice, owner, "sam", "Sam Staff", "staff")
    sam_api = sam.login()
    tab = owner_tab(practice)
    page = f"/console/users/{sam.user_id}"
    assert "Sam Staff" in tab.get(page).text
    granted = post(tab, page + "/roles", role="clinician")
    assert granted.status_code == 303
    assert "Role granted." in tab.get(page).text
    revoked = post(tab, page + "/roles/revoke", role="staff")
    assert revoked.status_code == 303
    roles = {u.username: u.roles for u in owner.users()}
    assert roles["sam"] == ["clinician"]
    reset = post(tab, page + "/reset")
    assert reset.status_code == 200 and CODE.search(reset.text)
    bearer = {"Authorization": f"Bearer {sam_api.token}"}
    assert practice.http.get("/auth/me", headers=bearer).status_code == 401  # sessions ended
    # A reason is needed to deactivate; none is refused in words.
    refused = post(tab, page + "/deactivate", reason="  ")
    assert refused.status_code == 422 and "reason" in refused.text
    done = post(tab, page + "/deactivate", reason="left the practice")
    assert done.status_code == 303
    assert "deactivated" in tab.get(page).text
    assert not {u.username: u.active for u in owner.users()}["sam"]


def test_the_last_owner_cannot_be_deactivated_and_the_page_says_so(practice: Practice) -> None:
    tab = owner_tab(practice)
    page = post(tab, f"/console/users/{practice.owner_id}/deactivate", reason="testing the rule")
    assert page.status_code == 403
    assert "Not permitted" in page.text and "owner" in page.text
    assert "Traceback" not in page.text


def test_an_auditor_is_refused_the_users_page_and_the_refusal_recorded(
    practice: Practice,
) -> None:
    auditor = add_member(practice, practice.owner(), "avery", "Avery Auditor", "auditor")
    tab = member_signs_in(auditor)
    page = tab.get("/console/users")
    assert page.status_code == 403
    assert "this needs the role user_admin" in page.text
    (refusal,) = events_of_type(practice, ROLE_REFUSED)
    assert refusal.route == "GET /console/users"  # type: ignore[attr-defined]
    assert refusal.user_id == auditor.user_id  # type: ignore[attr-defined]
    # Nor does the navigation offer it.
    assert 'href="/console/users"' not in tab.get("/console/").text
