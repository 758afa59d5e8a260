"""Issue 18's stories in a real browser (Debian's chromium, through Playwright), against a real
``chartledger serve``, on SQLite and on PostgreSQL:

1. a risk manager opens a matter and places a hold on a patient and a custodian;
2. the custodian signs in and acknowledges;
3. the risk manager produces, watches progress, downloads and sees the verifier's OK;
4. an owner approves a disposal a risk manager proposed, and a held record's disposal is
   refused on screen.

The stories run in this order on one practice per store (each builds on the one before).
Every page is photographed into tests/artifacts/console/ (``<store>-<n>-<page>.png``).
"""

from __future__ import annotations

import re
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import httpx
import psycopg
import pytest
from playwright.sync_api import Page, expect

from api.schemas import PatientIn
from tests.browser.conftest import (
    ARTIFACTS,
    Person,
    ServedPractice,
    initialised,
    sign_in,
)
from tests.conftest import PG_URL, REQUIRE_PG, pg_connect
from tests.e2e.conftest import served
from verify import verify_bundle

MATTER = ("CV-2026-18", "Doe v. Practice")
HELD = PatientIn(
    mrn="MRN-7", given_name="Ada", family_name="Quill", birth_date=date(1970, 1, 2), sex="female"
)
FREE = PatientIn(
    mrn="MRN-8",
    given_name="Zoë",
    family_name="Łukasiewicz",
    birth_date=date(1981, 5, 6),
    sex="female",
)
NOTICE = "Preserve every record of the patient named in Doe v. Practice, and your messages."


def _practice(home: Path, database_url: str | None) -> tuple[dict[str, str], Person]:
    """A practice whose retention floor is 0 years (so a record with activity today may be
    disposed of), on SQLite or on the PostgreSQL schema given."""
    return initialised(
        home,
        "Story Practice",
        database_url=database_url,
        settings={
            "CHARTLEDGER_RETENTION_FLOOR_ADULT_YEARS": "0",
            "CHARTLEDGER_RETENTION_FLOOR_MINOR_YEARS": "0",
        },
    )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def store(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """The served practice's database: None (SQLite), or a new PostgreSQL schema's URL."""
    if request.param == "sqlite":
        yield None
        return
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("PostgreSQL is required here but CHARTLEDGER_TEST_DATABASE_URL is unset")
        pytest.skip("PostgreSQL tests skipped: CHARTLEDGER_TEST_DATABASE_URL is not set")
    try:
        conn = pg_connect()
    except psycopg.Error as e:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL is required here but unreachable: {e}")
        pytest.skip(f"PostgreSQL tests skipped: {e}")
    schema = "t_" + uuid.uuid4().hex[:16]
    conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?schema={schema}"
    finally:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@pytest.fixture(scope="module")
def served_practice(
    store: str | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedPractice]:
    env, owner = _practice(tmp_path_factory.mktemp("stories") / "home", store)
    with served(env) as url:
        answering(url)
        practice = ServedPractice(url, env, owner)
        yield practice
        if practice._owner_client is not None:
            practice._owner_client.close()


def answering(url: str, seconds: float = 180.0) -> None:
    """Wait until the server answers /health: on a loaded machine its worker processes may
    take longer to start than ``served`` waits for."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=10).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the server at {url} did not answer within {seconds} s")


class Cast:
    """The stories' people and records, made over the API before the browser comes in."""

    def __init__(self, practice: ServedPractice) -> None:
        self.practice = practice
        self.owner = practice.owner
        self.rita = practice.member("rita", "Rita Risk", "risk_manager")
        # A second risk manager for the export story: a user signs in at most twice within one
        # TOTP step (a code is accepted once, one step of drift), so a third sign-in of Rita's
        # would wait for the next step, up to 30 s.
        self.rick = practice.member("rick", "Rick Risk", "risk_manager")
        # The disposal story's proposer and approver are people of their own for the same
        # reason: Rita signs in twice before it, and Olive once over the API and once there.
        self.rose = practice.member("rose", "Rose Risk", "risk_manager")
        self.otto = practice.member("otto", "Otto Owner", "owner")
        self.casey = practice.member("casey", "Casey Clinician", "clinician")
        # The front desk registers the patients: a record a custodian wrote in is held with
        # the custodian, and the second patient is to be free of the hold.
        sam = practice.member("sam", "Sam Staff", "staff")
        desk = practice.client()
        desk.login(sam.username, sam.password, sam.code())
        self.held = desk.register_patient(HELD).patient_id
        self.free = desk.register_patient(FREE).patient_id
        desk.close()
        self.store = "postgres" if "CHARTLEDGER_DATABASE_URL" in practice.env else "sqlite"


@pytest.fixture(scope="module")
def cast(served_practice: ServedPractice) -> Cast:
    return Cast(served_practice)


@pytest.fixture
def shot(cast: Cast) -> Callable[[Page, str], Path]:
    """``shot(page, name)``: the whole page into tests/artifacts/console/<store>-<name>.png."""

    def take(page: Page, name: str) -> Path:
        path = ARTIFACTS / "console" / f"{cast.store}-{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/console/sign-in.*"))


def test_1_a_risk_manager_opens_a_matter_and_places_a_hold_on_a_patient_and_a_custodian(
    page: Page, console_url: str, cast: Cast, shot: Callable[[Page, str], Path]
) -> None:
    page.goto(console_url + "/sign-in")
    shot(page, "1-sign-in")
    sign_in(page, console_url, cast.rita)
    page.get_by_role("navigation", name="Console").get_by_role("link", name="Matters").click()
    expect(page.get_by_role("heading", name="Matters", exact=True)).to_be_visible()
    page.get_by_label("Matter number").fill(MATTER[0])
    page.get_by_label("Name", exact=True).fill(MATTER[1])
    page.get_by_label("Forum (optional)").fill("Superior Court")
    shot(page, "1-matters")
    page.get_by_role("button", name="Open the matter").click()
    expect(page.get_by_role("heading", name=f"Matter {MATTER[0]}: {MATTER[1]}")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Matter opened.")
    shot(page, "1-matter")

    page.get_by_role("link", name="Place a hold").click()
    page.get_by_label("Find patients by MRN or name").fill("quill")
    page.get_by_label("Find patients by MRN or name").press("Enter")  # the form's search
    patient = page.get_by_label(re.compile(r"Quill, Ada — MRN MRN-7"))
    expect(patient).to_be_visible()
    patient.check()
    page.get_by_label(re.compile(r"^casey — Casey Clinician")).check()
    page.get_by_label("Name of the hold").fill("Doe records")
    page.get_by_label("Notice to the custodians").fill(NOTICE)
    shot(page, "1-place-hold")
    page.get_by_role("button", name="Place the hold").click()

    expect(page.get_by_role("heading", name="Hold “Doe records”")).to_be_visible()
    preserved = page.get_by_role("list", name="Patients preserved")
    expect(preserved.get_by_role("listitem")).to_have_text(["Quill, Ada (MRN MRN-7)"])
    row = page.get_by_role("row", name=re.compile("Casey Clinician"))
    expect(row).to_contain_text("outstanding")
    assert str(cast.held) not in page.locator("main").inner_text()  # names, not ids
    shot(page, "1-hold")


def test_2_the_custodian_signs_in_and_acknowledges(
    page: Page, console_url: str, cast: Cast, shot: Callable[[Page, str], Path]
) -> None:
    sign_in(page, console_url, cast.casey)  # a clinician, let in as a custodian
    page.get_by_role("link", name="My hold notices").first.click()
    expect(
        page.get_by_role("heading", name=re.compile(f"Doe records — matter {MATTER[0]}"))
    ).to_be_visible()
    expect(page.get_by_text(NOTICE)).to_be_visible()
    shot(page, "2-my-notices")
    page.get_by_role("button", name=re.compile("I have read this notice")).click()
    expect(page.get_by_role("status")).to_have_text("Notice version 1 acknowledged.")
    expect(page.get_by_text("You acknowledged version 1")).to_be_visible()
    shot(page, "2-acknowledged")


def test_3_the_risk_manager_produces_watches_progress_downloads_and_sees_the_verifiers_ok(
    page: Page, console_url: str, cast: Cast, shot: Callable[[Page, str], Path], tmp_path: Path
) -> None:
    sign_in(page, console_url, cast.rita)
    page.goto(console_url + "/holds")
    expect(page.get_by_role("row", name=re.compile("Doe records"))).to_contain_text("nobody")
    shot(page, "3-holds")
    page.get_by_role("link", name="Doe records").click()
    page.get_by_role("link", name="The hold report").click()
    expect(page.get_by_text("Nothing outstanding.")).to_be_visible()
    shot(page, "3-hold-report")

    page.goto(console_url + "/matters")
    page.get_by_role("link", name=MATTER[0]).click()
    page.get_by_role("button", name="Produce the matter").click()
    # The job's page: its progress, refreshed by htmx until the job ends.
    expect(page.get_by_role("heading", name="Production")).to_be_visible()
    expect(page.locator("#job-progress")).to_be_visible()
    shot(page, "3-production-progress")
    opened = page.get_by_role("link", name="Open the production")
    expect(opened).to_be_visible(timeout=60_000)
    expect(page.locator("#job-progress progress")).to_have_attribute("value", "100")
    shot(page, "3-production-finished")
    opened.click()
    expect(page.get_by_text("Quill, Ada (MRN MRN-7)")).to_be_visible()
    shot(page, "3-production")

    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download the bundle (ZIP)").click()
    bundle = tmp_path / downloading.value.suggested_filename
    downloading.value.save_as(bundle)
    assert zipfile.is_zipfile(bundle) and verify_bundle(bundle).ok

    page.get_by_role("button", name="Check the bundle with the verifier").click()
    expect(page.get_by_role("heading", name="Verifier: OK")).to_be_visible(timeout=60_000)
    expect(
        page.get_by_text(re.compile(r"OK: every one of the bundle's \d+ checks passed"))
    ).to_be_visible()
    shot(page, "3-verifier-ok")


def test_4_an_owner_approves_a_proposed_disposal_and_a_held_records_disposal_is_refused(
    page: Page, console_url: str, cast: Cast, shot: Callable[[Page, str], Path]
) -> None:
    page.on("dialog", lambda dialog: dialog.accept())  # "Dispose of this record now?"
    sign_in(page, console_url, cast.owner)
    page.get_by_role("link", name="Retention and disposal").first.click()
    page.get_by_label("Name", exact=True).fill("adults-0y")
    page.get_by_label("Years kept after an adult's last encounter").fill("0")
    page.get_by_label("Years kept past a minor's majority").fill("0")
    shot(page, "4-retention-owner")
    page.get_by_role("button", name="Adopt the policy").click()
    expect(page.get_by_role("status")).to_have_text("Policy adults-0y version 1 adopted.")
    sign_out(page)

    sign_in(page, console_url, cast.rose)
    page.goto(console_url + "/retention")
    page.get_by_role("link", name="Run adults-0y v1").click()
    expect(page.get_by_role("row", name=re.compile("Quill, Ada"))).to_contain_text(
        "held by “Doe records”"
    )
    shot(page, "4-retention-run")
    page.get_by_role(
        "button", name="Propose disposing of the record of Quill, Ada (MRN MRN-7)"
    ).click()
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("Disposal refused: the record is under legal hold")
    expect(refusal).to_contain_text(f"“Doe records” of matter {MATTER[0]}")
    expect(refusal).to_be_focused()
    shot(page, "4-held-disposal-refused")

    page.goto(console_url + "/retention/run?policy=adults-0y&version=1")
    page.get_by_role(
        "button", name=re.compile("Propose disposing of the record of Łukasiewicz, Zoë")
    ).click()
    expect(page.get_by_role("status")).to_contain_text("Disposal proposed")
    expect(page.get_by_role("row", name=re.compile("Łukasiewicz, Zoë"))).to_contain_text(
        "a second person approves"
    )
    shot(page, "4-proposed")
    sign_out(page)

    sign_in(page, console_url, cast.otto)
    page.goto(console_url + "/retention")
    row = page.get_by_role("row", name=re.compile("Łukasiewicz, Zoë"))
    expect(row).to_contain_text("Rose Risk (rose)")
    shot(page, "4-awaiting-approval")
    row.get_by_role("button", name="Approve and dispose").click()
    expect(page.get_by_role("status")).to_contain_text(
        "Disposal approved: the record was disposed under policy adults-0y v1"
    )
    expect(page.get_by_role("status")).to_contain_text("by Otto Owner (otto)")
    expect(page.get_by_role("row", name=re.compile("a record disposed of"))).to_contain_text(
        "approved"
    )
    shot(page, "4-disposed")
    owner = cast.practice.owner_client()
    (proposal,) = owner.disposal_proposals()
    assert (proposal.patient_id, proposal.state) == (cast.free, "approved")
    assert proposal.proposed_by == cast.rose.user_id and proposal.approved_by == cast.otto.user_id


def test_5_a_risk_manager_exports_a_patients_record_and_downloads_it(
    page: Page, console_url: str, cast: Cast, shot: Callable[[Page, str], Path], tmp_path: Path
) -> None:
    sign_in(page, console_url, cast.rick)
    page.get_by_role("link", name="EHI exports").first.click()
    page.get_by_label("Find the patient by MRN or name").fill("MRN-7")
    page.get_by_role("button", name="Find the patient").click()
    expect(page.get_by_label(re.compile(r"Quill, Ada — MRN MRN-7"))).to_be_checked()
    page.get_by_label("Purpose").select_option("HLEGAL")
    shot(page, "5-export-form")
    page.get_by_role("button", name="Start the export").click()
    expect(page.locator("#job-progress")).to_be_visible()
    shot(page, "5-export-progress")
    page.get_by_role("link", name="Open the export").click(timeout=60_000)
    expect(page.get_by_role("heading", name="EHI export of Quill, Ada (MRN MRN-7)")).to_be_visible()
    shot(page, "5-export")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Patient.ndjson").click()
    saved = tmp_path / "Patient.ndjson"
    downloading.value.save_as(saved)
    assert '"family":"Quill"' in saved.read_text().replace(" ", "")
