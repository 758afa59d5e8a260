"""The console's administrative pages in chromium (issue 18): users (create, roles, reset,
deactivate), the break-glass review queue and the owners' alerts, the audit view with its CSV
and a patient's access report, and the practice's status; refusals shown on the page. A
screenshot of each page is kept in tests/artifacts/console_admin/."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path

from playwright.sync_api import Page, expect

from api.schemas import PatientIn
from tests.browser.conftest import ServedPractice, sign_in

Shot = Callable[[Page, str], Path]


def zoe() -> PatientIn:
    return PatientIn(
        mrn="MRN-42",
        given_name="Zoë",
        family_name="Łukasiewicz",
        birth_date=date(1981, 3, 4),
        sex="female",
    )


def test_an_owner_manages_users_in_the_console(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    sam = served_practice.member("sam", "Sam Staff", "staff")
    sign_in(page, console_url, served_practice.owner)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Users")
    expect(page.get_by_role("heading", level=1)).to_be_focused()  # a new page: its heading
    page.get_by_label("Username").fill("rita")
    page.get_by_label("Full name").fill("Rita Risk")
    page.get_by_label("Role").select_option("risk_manager")
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("User rita created")
    code = page.get_by_label("Enrollment code").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{5}(-[A-Z2-7]{5}){3}", code)
    shot(page, "user-created")
    enrolled = served_practice.client().enroll("rita", code, "rita-password-1")
    assert enrolled.totp_secret is not None

    page.get_by_role("link", name="All users").click()
    expect(page.get_by_role("cell", name="Rita Risk")).to_be_visible()
    shot(page, "users")
    page.get_by_role("link", name="Sam Staff").click()
    page.get_by_label("Grant a role").select_option("clinician")
    page.get_by_role("button", name="Grant role").click()
    expect(page.get_by_role("status")).to_have_text("Role granted.")
    page.get_by_role("button", name="Revoke the role front-desk staff").click()
    expect(page.get_by_role("status")).to_have_text("Role revoked.")
    shot(page, "user")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_label("Reason").fill("left the practice")
    page.get_by_role("button", name="Deactivate user").click()
    expect(page.get_by_role("status")).to_have_text("User deactivated; their sessions ended.")
    users = {u.username: u for u in served_practice.owner_client().users()}
    assert users["sam"].roles == ["clinician"] and not users["sam"].active
    assert sam.user_id == users["sam"].user_id


def test_an_office_manager_is_refused_a_risk_manager_on_the_page(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    morgan = served_practice.member("morgan", "Morgan Manager", "staff")
    served_practice.owner_client().grant_role(morgan.user_id, "user_admin")
    sign_in(page, console_url, morgan)
    page.goto(console_url + "/users")
    page.get_by_label("Username").fill("rick")
    page.get_by_label("Full name").fill("Rick Risk")
    page.get_by_label("Role").select_option("risk_manager")
    page.get_by_role("button", name="Create user").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Not permitted")
    expect(alert).to_be_focused()
    expect(page.get_by_label("Username")).to_have_value("rick")  # what was typed is kept
    shot(page, "users-refused")


def test_break_glass_is_reviewed_and_the_alert_acknowledged(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    owner = served_practice.owner_client()
    casey = served_practice.login(served_practice.member("casey", "Dr. Casey", "clinician"))
    drew = served_practice.login(served_practice.member("drew", "Dr. Drew", "clinician"))
    patient = casey.register_patient(zoe())
    drew.break_glass(patient.patient_id, "unresponsive in the waiting room", 30)
    risk = served_practice.member("rhea", "Rhea Risk", "risk_manager")
    sign_in(page, console_url, risk)
    page.get_by_role("link", name="Break-glass reviews").first.click()
    heading = page.get_by_role("heading", name="Dr. Drew opened Zoë Łukasiewicz (MRN MRN-42)")
    expect(heading).to_be_visible()
    shot(page, "break-glass")
    page.get_by_label("Appropriate", exact=True).check()
    page.get_by_label("Note (optional)").fill("patient collapsed; reviewed with Dr. Drew")
    page.get_by_role("button", name="Record review").click()
    expect(page.get_by_role("status")).to_have_text("Review recorded.")
    expect(page.get_by_text("Nothing awaits review.")).to_be_visible()
    shot(page, "break-glass-reviewed")

    # A second owner (their own sign-in) acknowledges the alert.
    otto = served_practice.member("otto", "Otto Owner", "owner", by=owner)
    page.context.clear_cookies()
    sign_in(page, console_url, otto)
    page.get_by_role("link", name="Alerts").first.click()
    expect(page.get_by_text("break-glass by Dr. Drew on Zoë Łukasiewicz")).to_be_visible()
    shot(page, "alerts")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.get_by_text("No new alerts.")).to_be_visible()
    assert owner.alerts(acknowledged=False) == []


def test_an_auditor_filters_the_audit_view_and_opens_an_access_report(
    page: Page, console_url: str, served_practice: ServedPractice, shot: Shot
) -> None:
    avery = served_practice.member("avery", "Avery Auditor", "auditor")
    sign_in(page, console_url, avery)
    page.get_by_role("link", name="Audit").first.click()
    page.get_by_label("Kind of act").select_option("create")
    page.get_by_role("button", name="Show rows").click()
    expect(page.get_by_role("link", name="Zoë Łukasiewicz (MRN MRN-42)").first).to_be_visible()
    expect(page.get_by_role("cell", name="Dr. Casey").first).to_be_visible()
    shot(page, "audit")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows and {r["action"] for r in rows} == {"create"}
    page.get_by_role("link", name="Zoë Łukasiewicz (MRN MRN-42)").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Access report: Zoë Łukasiewicz (MRN MRN-42)"
    )
    shot(page, "access-report")
    # The status page, which auditors see too.
    page.get_by_role("link", name="Status").click()
    expect(page.get_by_role("heading", name="Background work")).to_be_visible()
    expect(page.get_by_text("No backup has been taken.")).to_be_visible()
    shot(page, "status")
    # A page this role may not see: a 403 page in words, focus on it.
    page.goto(console_url + "/users")
    expect(page.get_by_role("alert")).to_contain_text("this needs the role user_admin")
    expect(page.get_by_role("alert")).to_be_focused()
    shot(page, "refused")
