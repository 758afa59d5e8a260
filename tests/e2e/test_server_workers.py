"""`chartledger serve --workers 2`, on SQLite and on PostgreSQL: requests land on either process,
and each behaves as one server would: a session's idle clock counts its use in any process, an
ended session is refused by both, and the views one process keeps up serve the other."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import date
from uuid import UUID

import pytest

from api import auth
from api.client import Client, Unauthorized
from api.demo import demo_totp_secret
from api.schemas import PatientIn
from events.config import StoreConfig
from events.ledger import Ledger
from projections.access_report import patient_access_report
from tests.e2e.conftest import CHARTLEDGER, served

IDLE_SECONDS = 3
PASSWORD = "demo-clinician-1"


def ames_code() -> str:
    """Dr. Ames's TOTP code now (each test has a store, and a login, of its own)."""
    return auth.totp(demo_totp_secret("dr.ames"), int(time.time()))


@pytest.fixture
def server(store_config: StoreConfig) -> Iterator[str]:
    env = {
        **os.environ,
        "CHARTLEDGER_HOME": str(store_config.home),
        "CHARTLEDGER_PBKDF2_ITERATIONS": "1000",
        "CHARTLEDGER_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
    }
    env.pop("CHARTLEDGER_DATABASE_URL", None)
    if store_config.database_url:
        env["CHARTLEDGER_DATABASE_URL"] = store_config.database_url
    for command in (["init", "--name", "Workers"], ["demo", "--patients", "4"]):
        done = subprocess.run(
            CHARTLEDGER + command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, done.stderr
    with served(env) as url:
        yield url


def fresh(url: str, token: str) -> Client:
    """A client on a new connection, which either worker process may take."""
    return Client(url, token=token)


def test_a_session_used_in_one_process_is_alive_in_the_other_and_ends_idle_in_both(
    server: str,
) -> None:
    """Used on one kept-alive connection (so by one process) for twice the idle period, the
    session is alive on new connections, which either process may take; idle, it ends in both."""
    clinician = Client(server)
    clinician.login("dr.ames", PASSWORD, ames_code())
    token = clinician.token
    assert token is not None
    patient = register(server, clinician, "W-1")
    for _ in range(4 * IDLE_SECONDS):
        assert clinician.chart(patient).entries
        time.sleep(0.5)
    for _ in range(8):
        assert fresh(server, token).chart(patient).entries
    time.sleep(IDLE_SECONDS + 1.5)
    for _ in range(4):
        with pytest.raises(Unauthorized):
            fresh(server, token).me()


def test_a_session_ended_in_one_process_is_refused_by_both(server: str) -> None:
    clinician = Client(server)
    clinician.login("dr.ames", PASSWORD, ames_code())
    token = clinician.token
    assert token is not None
    for _ in range(6):
        assert fresh(server, token).me().roles == ["clinician"]
    clinician.logout()
    for _ in range(8):
        with pytest.raises(Unauthorized):
            fresh(server, token).me()


def test_every_read_reaches_the_access_report_whichever_process_served_it(
    server: str, store_config: StoreConfig
) -> None:
    """The reads land on both processes; the one keeping the views caught up takes them all."""
    clinician = Client(server)
    clinician.login("dr.ames", PASSWORD, ames_code())
    token = clinician.token
    assert token is not None
    patient = register(server, clinician, "W-2")
    for _ in range(10):
        fresh(server, token).chart(patient)
    ledger = Ledger(store_config)
    try:
        for _ in range(100):  # the follower polls every 0.2 s
            reads = [
                row
                for row in patient_access_report(ledger.db, str(patient))
                if row["action"] == "access" and row["data_category"] == "chart"
            ]
            if len(reads) >= 10:
                break
            time.sleep(0.1)
        assert len(reads) == 10
    finally:
        ledger.close()


def register(server: str, clinician: Client, mrn: str) -> UUID:
    """A patient the demo's front desk registers and puts in the clinician's care."""
    body = PatientIn(
        mrn=mrn, given_name="W", family_name="P", birth_date=date(1970, 1, 1), sex="unknown"
    )
    desk = Client(server)
    desk.login(
        "frontdesk", "demo-frontdesk-1", auth.totp(demo_totp_secret("frontdesk"), int(time.time()))
    )
    patient = desk.register_patient(body).patient_id
    desk.assign_care(patient, clinician.me().user_id)
    return patient
