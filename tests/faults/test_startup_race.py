"""Two servers racing at startup on one freshly initialised practice (issue 20), on SQLite and on
PostgreSQL: two ``chartledger serve`` processes started at the same instant on a home that only
`chartledger init` has touched, so both create the views' and the jobs' tables, migrate the
tiles and catch the views up at once. Both come up and serve; a write through each is read
through the other; the practice still has one key history and one genesis statement (the init
was not repeated); and the store verifies, keyless and with keys."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from api import auth
from api.client import Client
from events.config import StoreConfig
from tests.e2e.conftest import OWNER, OWNER_PASSWORD
from tests.faults.conftest import init_owned, practice_env, start, wait_healthy
from tests.integration.test_concurrency import rows, verdicts
from tests.support import set_env

pytestmark = pytest.mark.faults


def test_two_servers_started_at_once_on_a_fresh_practice_both_serve_one_store(
    store_config: StoreConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = practice_env(
        store_config.home, store_config.database_url, CHARTLEDGER_OWNER_PASSWORD=OWNER_PASSWORD
    )
    secret = init_owned(env, "Race")
    both = [start(env, tmp_path / f"serve-{n}.log") for n in (1, 2)]  # no wait between them
    try:
        for served in both:
            wait_healthy(served)
        step = int(time.time()) // 30
        owner = Client(both[0].url)
        owner.login(OWNER, OWNER_PASSWORD, auth.hotp(auth.from_base32(secret), step))
        other = Client(both[1].url, token=owner.token)
        made_here = owner.create_user("ann", "Ann", "staff").user_id
        made_there = other.create_user("bob", "Bob", "staff").user_id
        listed = {u.user_id for u in other.users()} & {u.user_id for u in owner.users()}
        assert {made_here, made_there} <= listed
        for served in both:
            assert httpx.get(served.url + "/health").status_code == 200
            assert "Traceback" not in served.output(), served.output()
    finally:
        for served in both:
            if served.process.poll() is None:
                os.killpg(served.process.pid, signal.SIGTERM)
        for served in both:
            served.process.wait(30)
    set_env(store_config, monkeypatch)
    assert rows(store_config, "SELECT COUNT(*) FROM ledger_keys")[0][0] == 1  # one genesis
    for code, out in verdicts(store_config, capsys):
        assert code == 0, out
