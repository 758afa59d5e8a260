"""Issue 18: ``chartledger demo`` (and so ``make run``) shows a demo login only while it still
works. Run twice on one home it shows the same logins, each of which logs in; after one user
changes their password, another is deactivated and a third has their authenticator reset, the
next run names what changed and shows none of their secrets, and every login it still shows
logs in. The logins are kept in a 0600 file in the home; without it (a demo loaded before it
existed) each is checked against the demo's password. Both stores."""

from __future__ import annotations

import re
import stat
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import auth
from api.app import create_app
from api.cli import main as chartledger
from api.client import Client
from api.settings import Settings
from events.config import StoreConfig
from tests.support import set_env

ITERATIONS = 1_000
OWNER_PASSWORD = "demo-owner-password"
LOGIN = re.compile(r"^  (\S+) +(\S+) +(\S+) +totp secret:  ([A-Z2-7]+)$", re.M)


def demo(capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    assert chartledger(["demo", "--patients", "2", "--owner", "owner"]) == 0
    return capsys.readouterr().out


def shown(out: str) -> dict[str, tuple[str, str, str]]:
    """The logins a run shows: username -> (password, roles, TOTP secret)."""
    return {m[0]: (m[1], m[2], m[3]) for m in LOGIN.findall(out)}


def line_of(out: str, username: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"  {username} "))


class Logins:
    """Logs the demo's users in to one practice, each with a TOTP code of a step not yet used
    (a code logs in once; the server takes a step either side of now)."""

    def __init__(self, http: TestClient) -> None:
        self.http = http
        self.last_step: dict[str, int] = {}

    def __call__(self, username: str, password: str, secret: str) -> Client:
        now = int(time.time()) // auth.TOTP_STEP
        step = max(now - 1, self.last_step.get(username, now - 2) + 1)
        assert step <= now + 1, "more than three logins within one step for one user"
        self.last_step[username] = step
        client = Client(http=self.http)
        client.login(username, password, auth.hotp(auth.from_base32(secret), step))
        return client


def test_demo_shows_only_the_logins_that_still_work(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(store_config, monkeypatch)
    monkeypatch.setenv("CHARTLEDGER_PBKDF2_ITERATIONS", str(ITERATIONS))
    monkeypatch.setenv("CHARTLEDGER_OWNER_PASSWORD", OWNER_PASSWORD)
    assert chartledger(["init", "--name", "Demo", "--owner", "owner", "--owner-name", "O"]) == 0
    first = shown(demo(capsys))
    assert set(first) == {"owner", "dr.ames", "dr.baker", "dr.chen", "frontdesk", "risk"}
    assert first["owner"][:2] == (OWNER_PASSWORD, "owner")
    assert first["dr.ames"][:2] == ("demo-clinician-1", "clinician")
    kept = store_config.home / "demo-logins.json"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert shown(demo(capsys)) == first  # the same, and still valid

    settings = Settings(store=store_config, pbkdf2_iterations=ITERATIONS, background=False)
    with TestClient(create_app(settings), raise_server_exceptions=False) as http:
        logs_in = Logins(http)
        signed_in = {u: logs_in(u, password, secret) for u, (password, _, secret) in first.items()}
        ids = {u: client.me().user_id for u, client in signed_in.items()}
        owner = signed_in["owner"]
        signed_in["dr.ames"].change_password("demo-clinician-1", "ames-own-password-1")
        owner.deactivate_user(ids["dr.baker"], "left the practice")
        owner.reset_user(ids["dr.chen"], authenticator=True)

        out = demo(capsys)
        now = shown(out)
        assert set(now) == {"owner", "frontdesk", "risk"} and now["frontdesk"] == first["frontdesk"]
        assert "(password changed since the demo set it)" in line_of(out, "dr.ames")
        assert "(deactivated)" in line_of(out, "dr.baker")
        chen = line_of(out, "dr.chen")
        assert "(password and authenticator changed since the demo set it)" in chen
        for gone in ("dr.ames", "dr.baker", "dr.chen"):  # no secret of theirs is shown
            assert first[gone][0] not in line_of(out, gone)
            assert first[gone][2] not in out
        for username, (password, _, secret) in now.items():
            assert logs_in(username, password, secret).me().user_id == ids[username]

        # A home without the file (a demo loaded before it was kept): the demo's passwords
        # are tried, the ones that work are shown and kept again.
        kept.unlink()
        out = demo(capsys)
        assert set(shown(out)) == {"owner", "frontdesk", "risk"}
        assert "(the demo's password does not work for it)" in line_of(out, "dr.ames")
        assert set(shown(demo(capsys))) == {"owner", "frontdesk", "risk"}
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600


def test_an_owner_the_demo_did_not_make_is_not_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(StoreConfig(home=tmp_path / "home"), monkeypatch)
    monkeypatch.setenv("CHARTLEDGER_PBKDF2_ITERATIONS", str(ITERATIONS))
    monkeypatch.setenv("CHARTLEDGER_OWNER_PASSWORD", "the-practice-s-own-1")
    assert chartledger(["init", "--name", "Real", "--owner", "owner", "--owner-name", "O"]) == 0
    monkeypatch.setenv("CHARTLEDGER_OWNER_PASSWORD", OWNER_PASSWORD)  # make run's default
    out = demo(capsys)
    assert "owner" not in shown(out) and OWNER_PASSWORD not in out
    assert "(the demo's password does not work for it)" in line_of(out, "owner")
