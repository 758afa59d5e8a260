"""The console's sign-in, session cookie, CSRF tokens and headers (issue 18), over HTTP on both
stores: the console's sessions are the API's, so revocation, the idle timeout and the audit
rows are the API's too. The browser tests (tests/browser/) drive the same pages in chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.console.web import CONSOLE_ROLES, SESSION_COOKIE
from api.hold_schemas import HoldIn, ScopeIn
from api.security_headers import CONSOLE_CSP
from tests.e2e.conftest import (
    OWNER,
    OWNER_PASSWORD,
    Practice,
    add_member,
    backdate_session,
    code_now,
    events_of_type,
)
from tests.e2e.console import browser, form_token, post_sign_in, sign_in

LOGGED_IN = "domain.credentials:Account.LoggedIn"
LOGIN_FAILED = "domain.credentials:Account.LoginFailed"
SESSION_ENDED = "domain.sessions:Session.Ended"
ROLE_REFUSED = "domain.refusals:RoleRefusal.Refused"
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\sstyle=|\son[a-z]+=|<style", re.IGNORECASE)


def owner_tab(practice: Practice, base_url: str = "") -> TestClient:
    return sign_in(practice, OWNER, OWNER_PASSWORD, practice.totp_secret, base_url)


def set_cookie_header(response: object, name: str) -> str:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    found = [h for h in headers if h.startswith(name + "=")]
    assert len(found) == 1, headers
    return found[0]


def session_token(tab: TestClient) -> str:
    return str(tab.cookies.get(SESSION_COOKIE))


def test_owner_signs_in_and_the_cookie_holds_an_api_session(practice: Practice) -> None:
    tab = browser(practice)
    answer = post_sign_in(tab, OWNER, OWNER_PASSWORD, code_now(practice.totp_secret))
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    cookie = set_cookie_header(answer, SESSION_COOKIE).lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console" in cookie
    assert "secure" not in cookie  # served over plain HTTP here: a Secure cookie would be lost
    assert len(events_of_type(practice, LOGGED_IN)) == 1
    # The same session the API knows: its token works as a bearer token.
    me = practice.http.get(
        "/auth/me", headers={"Authorization": f"Bearer {session_token(tab)}"}
    ).json()
    assert me["user_id"] == practice.owner_id
    home = tab.get("/console/")
    assert home.status_code == 200 and "Signed in as Olive" in home.text


def test_the_cookie_is_secure_when_the_console_is_served_over_tls(practice: Practice) -> None:
    tab = browser(practice, "https://console.example")
    answer = post_sign_in(tab, OWNER, OWNER_PASSWORD, code_now(practice.totp_secret))
    assert answer.status_code == 303
    assert "; secure" in set_cookie_header(answer, SESSION_COOKIE).lower()


def test_a_wrong_code_is_refused_on_the_page_and_recorded(practice: Practice) -> None:
    tab = browser(practice)
    answer = post_sign_in(tab, OWNER, OWNER_PASSWORD, "000000")
    assert answer.status_code == 401
    assert "The username, password or code is wrong." in answer.text
    assert 'role="alert"' in answer.text and "Traceback" not in answer.text
    assert SESSION_COOKIE not in tab.cookies
    assert len(events_of_type(practice, LOGIN_FAILED)) == 1


def test_a_sign_in_without_the_forms_token_tries_nothing(practice: Practice) -> None:
    tab = browser(practice)
    before = practice.leaves()
    answer = tab.post(
        "/console/sign-in",
        data={"username": OWNER, "password": OWNER_PASSWORD, "totp_code": "123456"},
    )
    assert answer.status_code == 403 and "Nothing was changed" in answer.text
    assert practice.leaves() == before and SESSION_COOKIE not in tab.cookies


@pytest.mark.parametrize("token", [None, "0" * 64, "the other session's"])
def test_a_post_without_its_sessions_token_writes_nothing(
    practice: Practice, token: str | None
) -> None:
    tab = owner_tab(practice)
    if token == "the other session's":
        token = form_token(owner_tab(practice).get("/console/").text)
    before = practice.leaves()
    data = {} if token is None else {"csrf_token": token}
    answer = tab.post("/console/sign-out", data=data)
    assert answer.status_code == 403
    assert "Form expired or not from this console" in answer.text
    assert practice.leaves() == before
    assert tab.get("/console/").status_code == 200  # still signed in: nothing was done


def test_signing_out_ends_the_session_for_the_api_too(practice: Practice) -> None:
    tab = owner_tab(practice)
    token = session_token(tab)
    answer = tab.post(
        "/console/sign-out", data={"csrf_token": form_token(tab.get("/console/").text)}
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    assert tab.get("/console/sign-in").text.count("Signed out.") == 1  # the flash, once
    bearer = {"Authorization": f"Bearer {token}"}
    assert practice.http.get("/auth/me", headers=bearer).status_code == 401
    assert [e.reason for e in events_of_type(practice, SESSION_ENDED)] == ["logout"]


def test_a_logout_through_the_api_is_refused_by_the_console_at_once(practice: Practice) -> None:
    tab = owner_tab(practice)
    bearer = {"Authorization": f"Bearer {session_token(tab)}"}
    assert practice.http.post("/auth/logout", headers=bearer).status_code == 204
    answer = tab.get("/console/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/"
    # The browser's cookie is dropped with it.
    assert "max-age=0" in set_cookie_header(answer, SESSION_COOKIE).lower()


def test_an_idle_console_session_ends_as_an_api_session_does(practice: Practice) -> None:
    tab = owner_tab(practice)
    assert tab.get("/console/").status_code == 200
    services = practice.http.app.state.services  # type: ignore[attr-defined]
    session_id = str(events_of_type(practice, LOGGED_IN)[-1].session_id)  # type: ignore[attr-defined]
    idle = practice.settings.idle_timeout.total_seconds()
    # The session was last used longer ago than the idle timeout (as the shared file says).
    backdate_session(services, session_id, datetime.now(UTC).timestamp() - idle - 5)
    answer = tab.get("/console/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
    assert [e.reason for e in events_of_type(practice, SESSION_ENDED)] == ["idle"]


def test_a_clinician_is_pointed_to_the_thin_client_and_the_refusal_recorded(
    practice: Practice,
) -> None:
    clinician = add_member(practice, practice.owner(), "cleo", "Cleo Clinician", "clinician")
    tab = browser(practice)
    answer = post_sign_in(tab, "cleo", clinician.password, code_now(clinician.totp_secret))
    assert answer.status_code == 403
    assert "Clinicians and front-desk staff use the Chartledger thin client." in answer.text
    assert SESSION_COOKIE not in tab.cookies
    (refusal,) = events_of_type(practice, ROLE_REFUSED)
    assert refusal.user_id == clinician.user_id  # type: ignore[attr-defined]
    assert refusal.route == "POST /console/sign-in"  # type: ignore[attr-defined]
    assert tuple(refusal.roles_required) == CONSOLE_ROLES  # type: ignore[attr-defined]
    # The session the password and code started is over at once.
    assert [e.reason for e in events_of_type(practice, SESSION_ENDED)] == ["logout"]


def test_pages_without_a_session_send_the_browser_to_sign_in(practice: Practice) -> None:
    tab = browser(practice)
    answer = tab.get("/console/")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/"
    assert tab.get("/console").status_code == 308
    # A forged cookie is no session either (and is dropped).
    tab.cookies.set(SESSION_COOKIE, "clt_00000000000000000000000000000000.x", path="/console")
    assert tab.get("/console/").status_code == 303


def test_after_sign_in_the_browser_goes_back_but_never_off_the_console(
    practice: Practice,
) -> None:
    tab = browser(practice)
    for asked in ["https://evil.example/", "//evil.example/console/", "/console//evil.example"]:
        page = tab.get("/console/sign-in", params={"next": asked})
        assert 'name="next" value="/console/"' in page.text, asked
    page = tab.get("/console/sign-in", params={"next": "/console/users"})
    assert 'name="next" value="/console/users"' in page.text
    # A next field forged into the form is checked again.
    answer = tab.post(
        "/console/sign-in",
        data={
            "username": OWNER,
            "password": OWNER_PASSWORD,
            "totp_code": code_now(practice.totp_secret),
            "csrf_token": form_token(page.text),
            "next": "//evil.example/",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"


def test_console_pages_have_the_strict_csp_no_cache_and_no_inline_script(
    practice: Practice,
) -> None:
    tab = owner_tab(practice)
    pages = {
        "/console/": 200,
        "/console/sign-in": 200,
        "/console/no-such-page": 404,
    }
    for path, status in pages.items():
        answer = tab.get(path)
        assert answer.status_code == status, path
        assert answer.headers["content-security-policy"] == CONSOLE_CSP
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["content-type"].startswith("text/html")
        assert not INLINE.search(answer.text), (path, INLINE.search(answer.text))
        assert "urn:chartledger:problem" not in answer.text  # a page, never the API's JSON
    script = tab.get("/console/static/htmx.min.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/java")
    assert tab.get("/console/static/..%2Fweb.py").status_code == 404


def test_a_clinician_who_is_a_custodian_may_sign_in_for_their_notices(
    practice: Practice,
) -> None:
    owner = practice.owner()
    cleo = add_member(practice, owner, "cleo", "Cleo Clinician", "clinician")
    risk = add_member(practice, owner, "rita", "Rita Risk", "risk_manager").client()
    matter = risk.open_matter("Doe v. Practice", "CV-2026-1")
    scope = ScopeIn(custodians=[cleo.user_id])
    # A silent hold sends no notice: it gives no reason to sign in.
    risk.place_hold(matter.matter_id, HoldIn(name="quiet", scope=scope, silent=True))
    tab = browser(practice)
    refused = post_sign_in(tab, "cleo", cleo.password, code_now(cleo.totp_secret))
    assert refused.status_code == 403
    risk.place_hold(matter.matter_id, HoldIn(name="Doe", scope=scope, notice="Preserve."))
    answer = post_sign_in(tab, "cleo", cleo.password, code_now(cleo.totp_secret))
    assert answer.status_code == 303
    assert "Signed in as Cleo Clinician" in tab.get("/console/").text


def test_every_page_an_owner_sees_is_strict_and_every_form_carries_its_token(
    practice: Practice,
) -> None:
    tab = owner_tab(practice)
    home = tab.get("/console/").text
    pages = ["/console/", *re.findall(r'<li><a href="(/console/[^"]+)"', home)]
    assert len(pages) >= 5, pages  # the nav: users, break-glass, alerts, audit, status
    token = form_token(home)
    for path in pages:
        answer = tab.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CONSOLE_CSP, path
        assert answer.headers["cache-control"] == "no-store", path
        assert not INLINE.search(answer.text), (path, INLINE.search(answer.text))
        forms = re.findall(r'<form method="post".*?</form>', answer.text, re.DOTALL)
        assert all(f'name="csrf_token" value="{token}"' in form for form in forms), path


def test_a_throttled_address_is_told_to_wait_on_the_page(practice: Practice) -> None:
    tab = browser(practice)
    waits = practice.settings.login_throttle.failures_before_wait
    for _ in range(waits - 1):
        assert post_sign_in(tab, OWNER, "guessed-password", "000000").status_code == 401
    answer = post_sign_in(tab, OWNER, "guessed-password", "000000")
    assert answer.status_code == 429
    assert int(answer.headers["retry-after"]) > 0
    assert (
        "Too many failed attempts" in answer.text and "seconds before trying again" in answer.text
    )
    assert len(events_of_type(practice, LOGIN_FAILED)) == waits
