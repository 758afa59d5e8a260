"""Signing in to the console over HTTP as a browser would (tests that need no real browser):
GET the form for its token and nonce cookie, POST it, keep the session cookie."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.e2e.conftest import Member, Practice, code_now

TOKEN = re.compile(r'name="csrf_token" value="([^"]*)"')


def form_token(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = TOKEN.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def browser(practice: Practice, base_url: str = "http://testserver") -> TestClient:
    """A client of its own (its own cookie jar), not following redirects, as a browser tab."""
    return TestClient(
        practice.http.app,
        base_url=base_url,
        raise_server_exceptions=False,
        follow_redirects=False,
    )


def sign_in(
    practice: Practice, username: str, password: str, secret: bytes, base_url: str = ""
) -> TestClient:
    """A browser signed in to the console as ``username`` (the sign-in must succeed)."""
    tab = browser(practice, base_url or "http://testserver")
    answer = post_sign_in(tab, username, password, code_now(secret))
    assert answer.status_code == 303, answer.text
    return tab


def post_sign_in(tab: TestClient, username: str, password: str, code: str):
    page = tab.get("/console/sign-in")
    assert page.status_code == 200
    return tab.post(
        "/console/sign-in",
        data={
            "username": username,
            "password": password,
            "totp_code": code,
            "csrf_token": form_token(page.text),
        },
    )


def member_signs_in(member: Member) -> TestClient:
    return sign_in(member.practice, member.username, member.password, member.totp_secret)
