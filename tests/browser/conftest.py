"""The console in a real browser: Playwright for Python driving Debian's chromium
(``/usr/bin/chromium``; Playwright never downloads a browser here), against a real
``chartledger serve`` of a fresh practice, one server per test module.

Fixtures:
- ``served_practice`` (module): the served practice, its first owner's credentials, and
  ``member(...)`` to add users over the API;
- ``console_url`` (module): the console's address, ``http://127.0.0.1:PORT/console``;
- ``page`` (each test): a new browser context (its own cookies) and page;
- ``shot``: ``shot(page, name)`` saves ``tests/artifacts/<area>/<name>.png``, the area being
  the test module's name without ``test_`` (the folder is gitignored; look at the pictures).

When chromium is missing the tests are skipped, except in CI (``CI=true`` or
``CHARTLEDGER_REQUIRE_POSTGRES=1``), where that is a failure: ``make test`` and ``.ci/run``
install it with apt.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, sync_playwright

from api import auth
from api.client import Client
from tests.e2e.conftest import CHARTLEDGER, served

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("CHARTLEDGER_REQUIRE_POSTGRES") == "1"
OWNER, OWNER_PASSWORD = "olive", "owner-password-1"
ITERATIONS = "1000"  # OWASP's 600,000 in production; low here so sign-ins are quick


class Codes:
    """TOTP codes, each used once: a code is accepted once per step and one step of drift, so
    a third sign-in of one user within a step waits for the next step."""

    def __init__(self) -> None:
        self.used: set[tuple[bytes, int]] = set()

    def now(self, secret: bytes) -> str:
        while True:
            step = int(datetime.now(UTC).timestamp()) // auth.TOTP_STEP
            for candidate in (step, step + 1):
                if (secret, candidate) not in self.used:
                    self.used.add((secret, candidate))
                    return auth.hotp(secret, candidate)
            time.sleep(1)


CODES = Codes()


@dataclass
class Person:
    username: str
    password: str
    totp_secret: bytes
    user_id: UUID
    name: str = ""

    def code(self) -> str:
        return CODES.now(self.totp_secret)


@dataclass
class ServedPractice:
    url: str  # the server's root
    env: dict[str, str]
    owner: Person
    _owner_client: Client | None = field(default=None, repr=False)

    @property
    def console_url(self) -> str:
        return self.url + "/console"

    def client(self) -> Client:
        return Client(self.url)

    def owner_client(self) -> Client:
        """The owner, signed in over the API once per module (for setting up the stories)."""
        if self._owner_client is None:
            client = self.client()
            client.login(self.owner.username, self.owner.password, self.owner.code())
            self._owner_client = client
        return self._owner_client

    def login(self, person: Person) -> Client:
        """A new API session of ``person``'s (for what the stories do outside the console)."""
        client = self.client()
        client.login(person.username, person.password, person.code())
        return client

    def member(self, username: str, name: str, role: str, by: Client | None = None) -> Person:
        """A new user, enrolled and ready to sign in, made over the API by ``by`` (the owner)."""
        by = by or self.owner_client()
        made = by.create_user(username, name, role)
        password = f"{username}-password-1"
        enrolled = self.client().enroll(username, made.enrollment_code, password)
        assert enrolled.totp_secret is not None
        return Person(
            username, password, auth.from_base32(enrolled.totp_secret), made.user_id, name
        )


def initialised(
    home: Path,
    name: str = "Browser Practice",
    *,
    database_url: str | None = None,
    settings: dict[str, str] | None = None,
) -> tuple[dict[str, str], Person]:
    """``chartledger init`` of a practice in ``home`` (on SQLite, or on the PostgreSQL schema
    at ``database_url``) with ``settings`` in its environment: the environment to serve it
    with, and its first owner."""
    env = {
        **os.environ,
        "CHARTLEDGER_HOME": str(home),
        "CHARTLEDGER_PBKDF2_ITERATIONS": ITERATIONS,
        "CHARTLEDGER_OWNER_PASSWORD": OWNER_PASSWORD,
        **(settings or {}),
    }
    env.pop("CHARTLEDGER_DATABASE_URL", None)
    if database_url:
        env["CHARTLEDGER_DATABASE_URL"] = database_url
    done = subprocess.run(
        [*CHARTLEDGER, "init", "--name", name, "--owner", OWNER, "--owner-name", "Olive Owner"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    owner_id = re.search(r"First owner 'olive' \(user ([0-9a-f-]+)\)", done.stdout)
    secret = re.search(r"totp secret:  ([A-Z2-7]+)", done.stdout)
    assert owner_id and secret, done.stdout
    owner = Person(
        OWNER,
        OWNER_PASSWORD,
        auth.from_base32(secret.group(1)),
        UUID(owner_id.group(1)),
        "Olive Owner",
    )
    return env, owner


@pytest.fixture(scope="module")
def served_practice(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedPractice]:
    env, owner = initialised(tmp_path_factory.mktemp("console") / "home")
    with served(env) as url:
        practice = ServedPractice(url, env, owner)
        yield practice
        if practice._owner_client is not None:
            practice._owner_client.close()


@pytest.fixture(scope="module")
def console_url(served_practice: ServedPractice) -> str:
    return served_practice.console_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install -y chromium (make test does)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context (no cookies), failing the test on any CSP violation, script
    error or failed subresource (a refusal page's own status, 401, 403, 409, is no failure)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    def console_message(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            problems.append(message.text)

    def response(answer: Response) -> None:
        if answer.status >= 400 and answer.request.resource_type != "document":
            problems.append(f"{answer.status} for {answer.request.resource_type} {answer.url}")

    page.on("console", console_message)
    page.on("response", response)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.set_default_timeout(10_000)
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    area = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")

    def take(page: Page, name: str) -> Path:
        path = ARTIFACTS / area / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page: Page, console_url: str, person: Person) -> None:
    """Sign ``person`` in through the form, as a user would, and land on a console page."""
    page.goto(console_url + "/sign-in")
    page.get_by_label("Username").fill(person.username)
    page.get_by_label("Password").fill(person.password)
    page.get_by_label("Code from your authenticator app").fill(person.code())
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/console/(?!sign-in).*"))
