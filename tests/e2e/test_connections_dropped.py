"""Four clients record labs on a served PostgreSQL practice while the server's connections to
PostgreSQL are cut again and again, some of them with a COMMIT in flight (issue 23). Afterwards
every lab a client was told was kept is in the log exactly once, no lab is in it twice, no
answer was a 409 or a 500 (503 is allowed: the client tries again), and the store verifies.

The cuts are ``pg_terminate_backend`` on the backends of this server alone (found by the
application name its connections carry, PGAPPNAME): the PostgreSQL cluster is shared, so it is
never restarted here.

Each client is api/client.py as a clinician's CLI uses it: one Idempotency-Key per lab, sent
again on every retry of a lost connection or a 503 (docs/IDEMPOTENCY.md).
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from uuid import UUID

import httpx
import pytest

from api import auth
from api.client import ApiError, Client
from api.client_retry import IN_FLIGHT, Retry, Unanswered
from api.demo import demo_totp_secret
from api.schemas import LabIn
from events.config import StoreConfig, parse_database_url
from events.ledger import Ledger
from projections.runner import read_entries
from tests.conftest import pg_connect
from tests.e2e.conftest import CHARTLEDGER, served
from tests.e2e.test_server_workers import register
from tests.integration.test_concurrency import verdicts
from tests.support import set_env

CLIENTS = 4
LABS_EACH = 12
RECEIVED = "domain.labs:LabResult.Received"


@pytest.fixture
def server(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str, Log]]:
    """A served PostgreSQL practice (the demo's users), its connections' application name, and
    the test's own reader of its log (opened before the server, so their setups never race)."""
    if store_config.database_url is None:
        pytest.skip("connections to PostgreSQL cut mid-commit: SQLite has no connection")
    set_env(store_config, monkeypatch)  # for `chartledger verify` at the end
    app_name = "chartledger-" + parse_database_url(store_config.database_url).schema
    env = {
        **os.environ,
        "CHARTLEDGER_HOME": str(store_config.home),
        "CHARTLEDGER_DATABASE_URL": store_config.database_url,
        "CHARTLEDGER_PBKDF2_ITERATIONS": "1000",
        "PGAPPNAME": app_name,
    }
    for command in (["init", "--name", "Drops"], ["demo", "--patients", "1"]):
        done = subprocess.run(
            CHARTLEDGER + command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        assert done.returncode == 0, done.stderr
    log = Log(store_config)
    try:
        with served(env) as url:
            yield url, app_name, log
    finally:
        log.ledger.close()


def marker(client: int, n: int) -> str:
    return f"DROP-{client}-{n}"


def lab(patient: UUID, mark: str) -> LabIn:
    return LabIn(
        patient_id=patient,
        loinc_code="2345-7",
        test_name="Glucose",
        value="5.2",
        unit="mg/dL",
        performing_lab=mark,  # one per logical write
    )


class Log:
    """The store's log as the test reads it, on a connection of its own (never cut)."""

    def __init__(self, config: StoreConfig) -> None:
        self.ledger = Ledger(config)
        self.lock = threading.Lock()

    def labs(self) -> Counter[str]:
        """How many times each lab marker is in the log."""
        with self.lock:
            return Counter(
                entry.event.performing_lab  # type: ignore[attr-defined]
                for entry in read_entries(self.ledger, 0, limit=100_000)
                if entry.header.type == RECEIVED
            )


class Outcomes:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.kept: list[str] = []  # answered 201
        self.statuses: Counter[int | str] = Counter()  # every answer the clients saw

    def note(self, status: int | str) -> None:
        with self.lock:
            self.statuses[status] += 1

    def seen(self, response: httpx.Response) -> None:
        """An answer on the way, retries' included; a 409 saying the client's own key is still
        being processed (which the client waits out) is told apart from a conflict."""
        status: int | str = response.status_code
        if status == 409:
            response.read()
            if response.json().get("type") == IN_FLIGHT:
                status = "409 own key in flight"
        self.note(status)


def record_once(url: str, token: str, patient: UUID, mark: str, outcomes: Outcomes) -> None:
    """One logical write through api/client.py, as a clinician's save: it sends one
    Idempotency-Key and retries lost connections and 503s with it, with backoff."""
    client = Client(url, token=token, retry=Retry(attempts=12, first=0.25, longest=2.0))
    client.http.event_hooks["response"].append(outcomes.seen)
    try:
        client.record_lab(lab(patient, mark))
        with outcomes.lock:
            outcomes.kept.append(mark)
    except Unanswered:
        outcomes.note("unanswered")
    except ApiError:
        pass  # its status was noted on the way, and the test fails on it
    finally:
        client.close()


def cut_connections(app_name: str, stop: threading.Event, cuts: list[int]) -> None:
    """Terminate the server's backends every 100-400 ms (a seeded, repeatable rhythm)."""
    rhythm = random.Random(23)
    with pg_connect() as conn:
        while not stop.wait(rhythm.uniform(0.1, 0.4)):
            row = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND pid <> pg_backend_pid()",
                (app_name,),
            ).fetchone()
            cuts.append(int(row[0]) if row else 0)


def test_labs_recorded_while_the_servers_connections_are_cut_are_kept_exactly_once(
    server: tuple[str, str, Log], store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    url, app_name, log = server
    clinician = Client(url)
    clinician.login(
        "dr.ames", "demo-clinician-1", auth.totp(demo_totp_secret("dr.ames"), int(time.time()))
    )
    assert clinician.token is not None
    patient = register(url, clinician, "DROP-1")
    outcomes, cuts, stop = Outcomes(), [], threading.Event()
    cutter = threading.Thread(target=cut_connections, args=(app_name, stop, cuts))
    token = clinician.token

    def one_client(c: int) -> None:
        for n in range(LABS_EACH):
            record_once(url, token, patient, marker(c, n), outcomes)

    writers = [threading.Thread(target=one_client, args=(c,)) for c in range(CLIENTS)]
    cutter.start()
    for w in writers:
        w.start()
    for w in writers:
        w.join(240)
    stop.set()
    cutter.join(10)

    assert sum(cuts) >= 5, cuts  # the server's connections really were cut, many times
    assert outcomes.statuses[409] == 0 and outcomes.statuses[500] == 0, outcomes.statuses
    assert set(outcomes.statuses) <= {201, 503, "409 own key in flight"}, outcomes.statuses
    in_log = log.labs()
    every = {marker(c, n) for c in range(CLIENTS) for n in range(LABS_EACH)}
    assert sorted(outcomes.kept) == sorted(every), outcomes.statuses  # each one landed
    assert {m: in_log[m] for m in every} == dict.fromkeys(every, 1)  # and exactly once
    with capsys.disabled():  # the figures, for whoever runs it with -s
        print(f"\ncuts {sum(cuts)} in {len(cuts)} rounds; answers {dict(outcomes.statuses)}")
    for code, out in verdicts(store_config, capsys):
        assert code == 0, out
