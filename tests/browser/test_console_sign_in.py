"""Signing in to the console in chromium: by keyboard alone, a wrong code shown in words with
focus on it, a clinician sent to the thin client, and signing out (issue 18)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Person, ServedPractice, sign_in

Shot = Callable[[Page, str], Path]


def test_an_owner_signs_in_with_the_keyboard_alone(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    owner = served_practice.owner
    page.goto(console_url + "/")
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next=/console/$"))
    # The username field has the focus as the page opens.
    expect(page.get_by_label("Username")).to_be_focused()
    # Focus is visible: the keyboard's position is outlined.
    outline = page.get_by_label("Username").evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline not in ("", "none")
    shot(page, "sign-in")
    page.keyboard.type(owner.username)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(owner.password)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Code from your authenticator app")).to_be_focused()
    page.keyboard.type(owner.code())
    page.keyboard.press("Enter")
    expect(page).to_have_url(console_url + "/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Chartledger console")
    expect(page.get_by_text("Signed in as Olive Owner (owner)")).to_be_visible()
    shot(page, "home")
    # The skip link is the first stop of the keyboard, and goes to the main content.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to main content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_a_wrong_code_is_shown_in_words_with_the_focus_on_it(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    page.goto(console_url + "/sign-in")
    page.get_by_label("Username").fill(served_practice.owner.username)
    page.get_by_label("Password").fill(served_practice.owner.password)
    page.get_by_label("Code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The username, password or code is wrong.")
    expect(alert).to_be_focused()
    shot(page, "wrong-code")


def test_a_clinician_is_sent_to_the_thin_client(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    clinician: Person = served_practice.member("cleo", "Cleo Clinician", "clinician")
    page.goto(console_url + "/sign-in")
    page.get_by_label("Username").fill(clinician.username)
    page.get_by_label("Password").fill(clinician.password)
    page.get_by_label("Code from your authenticator app").fill(clinician.code())
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("use the Chartledger thin client")
    shot(page, "clinician-refused")
    page.goto(console_url + "/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))  # no session was kept


def test_signing_out_returns_to_the_sign_in_page(
    page: Page, console_url: str, served_practice: ServedPractice
) -> None:
    auditor = served_practice.member("avery", "Avery Auditor", "auditor")
    sign_in(page, console_url, auditor)
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(console_url + "/sign-in")
    expect(page.get_by_role("status")).to_have_text("Signed out.")
    page.goto(console_url + "/")
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
