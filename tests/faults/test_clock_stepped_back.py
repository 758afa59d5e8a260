"""The clock stepped backwards under a running server (issue 20), on both stores.

The fault is real: ``chartledger serve`` runs under libfaketime (Debian's ``faketime`` package,
LD_PRELOAD), whose offset is read from a file the test rewrites while the server runs, from
``+0`` to 90 s back. Only the wall clock moves (FAKETIME_DONT_FAKE_MONOTONIC=1), as when an
operator or a broken NTP steps it.

What the ledger does (docs/LEDGER_FORMAT.md, "Recorded times and a clock that steps back"):
recorded times are kept as the clock gave them (DESIGN rule 5: metadata is evidence, so a
stepped time is not rewritten to look ordered), and the step is recorded: the server's log says
the clock went back and by how much, before the first event recorded after it. The log and its
checkpoints still verify.
"""

from __future__ import annotations

import os
import re
import time
from datetime import datetime
from pathlib import Path

import pytest

from api import auth
from api.client import Client
from events.config import StoreConfig
from events.ledger import Ledger
from projections.runner import read_entries
from tests.e2e.conftest import OWNER, OWNER_PASSWORD
from tests.faults.conftest import init_owned, practice_env, serving
from tests.integration.test_concurrency import verdicts
from tests.support import set_env

pytestmark = pytest.mark.faults

LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")
STEP = 90  # seconds back: three TOTP steps, far beyond any jitter between threads
CREATED = "domain.users:User.Registered"


def recorded_times(config: StoreConfig, topic: str) -> list[tuple[int, datetime]]:
    ledger = Ledger(config)
    try:
        return [
            (e.position, datetime.fromisoformat(e.header.recorded.replace("Z", "+00:00")))
            for e in read_entries(ledger, 0, limit=100_000)
            if e.header.type == topic
        ]
    finally:
        ledger.close()


def test_a_clock_stepped_back_is_recorded_and_the_store_still_verifies(
    store_config: StoreConfig,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not LIBFAKETIME.exists():
        if os.environ.get("CI") == "true":
            pytest.fail("libfaketime is not installed (apt package faketime; make browser-tools)")
        pytest.skip("libfaketime is not installed (apt package faketime; make browser-tools)")
    offset = tmp_path / "faketime"
    offset.write_text("+0\n")
    env = practice_env(
        store_config.home, store_config.database_url, CHARTLEDGER_OWNER_PASSWORD=OWNER_PASSWORD
    )
    secret = init_owned(env, "Clock")
    faked = {
        **env,
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME_TIMESTAMP_FILE": str(offset),
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",  # the file read at every call: the step lands at once
        "CHARTLEDGER_CHECKPOINT_SECONDS": "1",  # checkpoints signed on both sides of the step
    }
    with serving(faked, tmp_path / "serve.log") as served:
        owner = Client(served.url)
        owner.login(OWNER, OWNER_PASSWORD, auth.totp(auth.from_base32(secret), int(time.time())))
        owner.create_user("before", "Before", "staff")
        offset.write_text(f"-{STEP}\n")
        owner.create_user("after", "After", "staff")
        time.sleep(1.2)  # a checkpoint signed at the stepped time
        owner.create_user("later", "Later", "staff")
        output = served.output()
    [(_, before), (_, after), (_, later)] = recorded_times(store_config, CREATED)[-3:]
    # Kept as the clock said: the step shows in the recorded times, not hidden.
    assert STEP - 10 < (before - after).total_seconds() < STEP + 10, (before, after)
    assert later > after
    # And the step is recorded once, with its size, and no trace of an error.
    steps = re.findall(r"clock stepped back by (\d+(?:\.\d+)?) s", output)
    assert len(steps) == 1 and STEP - 10 < float(steps[0]) < STEP + 10, output
    assert "Traceback" not in output, output
    set_env(store_config, monkeypatch)
    for code, out in verdicts(store_config, capsys):
        assert code == 0, out
