"""The Idempotency-Key rules over HTTP, on both stores (issue 23, docs/IDEMPOTENCY.md): a repeat
gets the first answer and writes nothing; the same key with another body is 422; a key is its
caller's own; a refusal frees the key; a key expires; a key still in flight is 409; and the thin
client's retry after a dropped answer lands the write once."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest
import uvicorn
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as chartledger
from api.client import Client
from api.client_retry import Retry
from api.schemas import LabIn
from events import postgres as pg_recorder
from events.idempotency import TABLE
from events.ledger import Ledger
from tests.e2e.conftest import (
    OWNER_PASSWORD,
    Practice,
    add_member,
    owner_logs_in_remotely,
)
from tests.e2e.test_clinical import ada, glucose, in_care

PROBLEM = "urn:chartledger:problem:"
LIFETIME = 3  # seconds a key lives in the expiry test


def ledger_of(practice: Practice) -> Ledger:
    return practice.http.app.state.services.ledger  # type: ignore[attr-defined,no-any-return]


def labs_in_log(practice: Practice) -> int:
    """Lab events in the real table, counted by SQL."""
    rows = ledger_of(practice).db.query(
        "SELECT COUNT(*) FROM stored_events WHERE topic LIKE 'domain.labs:%'"
    )
    return int(rows[0][0])


def key_rows(practice: Practice) -> list[tuple[Any, ...]]:
    return ledger_of(practice).db.query(f"SELECT caller, key, status FROM {TABLE}")


def send(
    client: Client, body: dict[str, Any], key: str | None, path: str = "/labs"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {client.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.http.request("POST", path, json=body, headers=headers)


def lab_body(patient_id: UUID, value: str = "5.2") -> dict[str, Any]:
    return glucose(patient_id).model_copy(update={"value": value}).model_dump(mode="json")


@pytest.fixture
def owner_and_patient(practice: Practice) -> tuple[Client, UUID]:
    owner = practice.owner()
    return owner, owner.register_patient(ada()).patient_id


def test_a_repeat_gets_the_first_answer_and_writes_nothing(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    before = labs_in_log(practice)
    first = send(owner, lab_body(patient_id), '"lab-1"')
    assert first.status_code == 201, first.text
    assert labs_in_log(practice) == before + 1
    leaves = practice.leaves()
    for _ in range(2):  # the bare form names the same key
        again = send(owner, lab_body(patient_id), "lab-1")
        assert again.status_code == 201
        assert again.json() == first.json()  # the same lab id, value and version
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert labs_in_log(practice) == before + 1 and practice.leaves() == leaves
    # The stored answer is sealed: the lab's value is not in the table in the clear.
    sealed = ledger_of(practice).db.query(f"SELECT answer FROM {TABLE} WHERE key = 'lab-1'")
    assert len(sealed) == 1 and b"Glucose" not in bytes(sealed[0][0])


def test_without_a_key_each_request_is_its_own_write(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    before, rows = labs_in_log(practice), key_rows(practice)
    ids = {send(owner, lab_body(patient_id), None).json()["lab_id"] for _ in range(2)}
    assert len(ids) == 2 and labs_in_log(practice) == before + 2
    assert key_rows(practice) == rows


def test_the_same_key_with_another_body_is_422_and_writes_nothing(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    assert send(owner, lab_body(patient_id), '"k"').status_code == 201
    before, leaves = labs_in_log(practice), practice.leaves()
    for changed in (
        lambda: send(owner, lab_body(patient_id, "5.3"), '"k"'),  # another body
        lambda: send(owner, lab_body(patient_id), '"k"', path="/labs?x=1"),  # another query
    ):
        refused = changed()
        assert refused.status_code == 422, refused.text
        assert refused.json()["type"] == PROBLEM + "idempotency-key-reused"
        assert refused.headers["content-type"] == "application/problem+json"
        assert "5.3" not in refused.text
    assert labs_in_log(practice) == before and practice.leaves() == leaves


def test_a_key_is_its_callers_own(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    clinician = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    in_care(owner, patient_id, clinician)
    mine = send(owner, lab_body(patient_id), '"shared"')
    assert mine.status_code == 201
    # Another caller with the same key and body: their own write, never the owner's answer.
    theirs = send(clinician, lab_body(patient_id), '"shared"')
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["lab_id"] != mine.json()["lab_id"]
    # ...and a different body under it is theirs to send too.
    assert send(clinician, lab_body(patient_id, "7.0"), '"other"').status_code == 201
    assert send(owner, lab_body(patient_id, "7.0"), '"other"').status_code == 201
    callers = sorted(row[0] for row in key_rows(practice) if row[1] == "shared")
    assert callers == sorted([practice.owner_id, str(clinician.me().user_id)])


def test_a_route_that_checks_its_caller_through_a_dependency_honours_the_key_too(
    practice: Practice,
) -> None:
    """``POST /matters`` takes its risk manager through ``current_user`` as a dependency, not
    through api/routing.py's caller check."""
    owner = practice.owner()
    risk = add_member(practice, owner, "rita", "Rita", "risk_manager").client()
    body = {"name": "Doe v. Clinic", "number": "CV-1"}
    matters = "SELECT COUNT(*) FROM stored_events WHERE topic LIKE 'legal_hold.%'"
    before = ledger_of(practice).db.query(matters)[0][0]
    first = send(risk, body, '"matter"', path="/matters")
    assert first.status_code == 201, first.text
    written = ledger_of(practice).db.query(matters)[0][0]
    assert written > before
    again = send(risk, body, '"matter"', path="/matters")
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert send(risk, {**body, "number": "CV-2"}, '"matter"', path="/matters").status_code == 422
    assert ledger_of(practice).db.query(matters)[0][0] == written


def test_a_refusal_frees_the_key_for_a_retry_that_may_succeed(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    clinician = add_member(practice, owner, "casey", "Dr. Casey", "clinician").client()
    refused = send(clinician, lab_body(patient_id), '"retry-me"')  # no care relationship yet
    assert refused.status_code == 403
    # The refusal was recorded as an event; the key is free again.
    assert "retry-me" not in {row[1] for row in key_rows(practice)}
    in_care(owner, patient_id, clinician)
    kept = send(clinician, lab_body(patient_id), '"retry-me"')
    assert kept.status_code == 201, kept.text
    assert send(clinician, lab_body(patient_id), '"retry-me"').json() == kept.json()


def test_a_key_expires_after_its_lifetime(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    brief = replace(practice.settings, idempotency_key_lifetime=timedelta(seconds=LIFETIME))
    with TestClient(create_app(brief), raise_server_exceptions=False) as http:
        short = Client(http=http, token=owner.token)
        first = send(short, lab_body(patient_id), '"daily"')
        assert send(short, lab_body(patient_id, "6.1"), '"daily"').status_code == 422
        time.sleep(LIFETIME + 0.2)
        before = labs_in_log(practice)
        # Expired: the key is free again, and the new request is a new write.
        second = send(short, lab_body(patient_id, "6.1"), '"daily"')
        assert second.status_code == 201, second.text
        assert second.json()["lab_id"] != first.json()["lab_id"]
        assert labs_in_log(practice) == before + 1
        assert [row[1] for row in key_rows(practice)].count("daily") == 1  # the new one
        time.sleep(LIFETIME + 0.2)
        services = http.app.state.services  # type: ignore[attr-defined]
        services.answers._swept = 0.0  # the next sweep is due now rather than in 5 minutes
        services.answers.sweep_if_due()
        assert "daily" not in {row[1] for row in key_rows(practice)}


def test_a_key_still_in_flight_is_409_and_one_whose_answer_was_lost_says_it_was_kept(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    first = send(owner, lab_body(patient_id), '"slow"')
    assert first.status_code == 201
    db = ledger_of(practice).db
    # As another worker's request leaves it between its write and its answer: no answer yet.
    with db.write(lock=False) as c:
        c.execute(
            f"UPDATE {TABLE} SET status = NULL, answer = NULL, token = 'x' WHERE key = 'slow'"
        )
    before = labs_in_log(practice)
    busy = send(owner, lab_body(patient_id), '"slow"')
    assert busy.status_code == 409 and busy.headers["retry-after"] == "1"
    assert busy.json()["type"] == PROBLEM + "idempotency-key-in-flight"
    # Long after, with still no answer: the server stopped in between; the write was kept.
    with db.write(lock=False) as c:
        c.execute(f"UPDATE {TABLE} SET created = created - 3600 WHERE key = 'slow'")
    lost = send(owner, lab_body(patient_id), '"slow"')
    assert lost.status_code == 409
    assert lost.json()["type"] == PROBLEM + "kept-without-answer"
    assert labs_in_log(practice) == before


def test_the_same_keyed_request_sent_at_once_is_written_once(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    """Four copies at the same moment: one writes; each other gets its answer, or 409 while
    it is still being written (never a second lab, never a 'conflicting change')."""
    owner, patient_id = owner_and_patient
    before = labs_in_log(practice)
    start = threading.Barrier(4)
    answers: list[httpx.Response] = []

    def one() -> None:
        client = Client(http=practice.http_client(), token=owner.token)
        start.wait()
        answers.append(send(client, lab_body(patient_id), '"at-once"'))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 4
    replayed = [a for a in answers if "idempotent-replayed" in a.headers]
    written = [a for a in answers if a.status_code == 201 and a not in replayed]
    assert len(written) == 1, [(a.status_code, a.text) for a in answers]
    for answer in answers:
        if answer.status_code == 201:
            assert answer.json() == written[0].json()
        else:
            assert answer.status_code == 409, answer.text
            assert answer.json()["type"] == PROBLEM + "idempotency-key-in-flight"
    assert labs_in_log(practice) == before + 1
    print("at once:", sorted((a.status_code, a in replayed) for a in answers))


def test_a_keyed_write_whose_commit_was_not_heard_is_201_not_a_conflict(
    practice: Practice, owner_and_patient: tuple[Client, UUID], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23's false 409 over HTTP: PostgreSQL committed the lab, the server heard an error
    and its recorder appended again, colliding with itself. The key's row says it was this
    request's own write: 201, one lab."""
    if ledger_of(practice).db.dialect != "postgres":
        pytest.skip("only PostgreSQL's recorder retries an append")
    owner, patient_id = owner_and_patient
    real, lost = pg_recorder.commit_to, []

    def answer_lost_once(cache: Any, appended: Any) -> None:
        real(cache, appended)
        if not lost:
            lost.append(1)
            # As psycopg reports it, under eventsourcing's own error (events/store_errors.py).
            lost_connection = psycopg.OperationalError("server closed the connection unexpectedly")
            raise OperationalError(str(lost_connection)) from lost_connection

    monkeypatch.setattr(pg_recorder, "commit_to", answer_lost_once)
    before = labs_in_log(practice)
    kept = send(owner, lab_body(patient_id), '"heard-nothing"')
    assert kept.status_code == 201, kept.text
    assert lost and labs_in_log(practice) == before + 1
    again = send(owner, lab_body(patient_id), '"heard-nothing"')
    assert again.json() == kept.json() and labs_in_log(practice) == before + 1


@pytest.mark.parametrize("value", ["", '""', '"a', '"a"b', "a b", '"\\n"', '"' + "k" * 256 + '"'])
def test_a_malformed_key_is_400_and_writes_nothing(
    practice: Practice, owner_and_patient: tuple[Client, UUID], value: str
) -> None:
    owner, patient_id = owner_and_patient
    before = labs_in_log(practice)
    refused = send(owner, lab_body(patient_id), value)
    assert refused.status_code == 400, refused.text
    assert refused.json()["type"] == PROBLEM + "idempotency-key"
    assert labs_in_log(practice) == before


# -- the thin client's retries, over a real socket ------------------------------------------------


class DroppingProxy:
    """A TCP proxy in front of a real server that, for the first ``drop`` requests, passes the
    request on and reads the server's whole answer, then closes the client's connection
    without sending it: the write is done, the client never hears so."""

    def __init__(self, upstream: str, drop: int, busy: list[str] | None = None) -> None:
        host, port = upstream.removeprefix("http://").split(":")
        self.upstream = (host, int(port))
        self.drop = drop
        self.dropped = 0
        self.busy = busy or []  # first answer these Retry-After values with 503, passing nothing on
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn, socket.create_connection(self.upstream) as up:
            request = _http_message(conn)
            if not request:
                return
            if self.busy:
                problem = b'{"type":"about:blank","title":"Unavailable","status":503}'
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: "
                    + self.busy.pop(0).encode()
                    + b"\r\nContent-Type: application/problem+json\r\nContent-Length: "
                    + str(len(problem)).encode()
                    + b"\r\nConnection: close\r\n\r\n"
                    + problem
                )
                return
            # One exchange per connection, so the proxy knows where each answer ends.
            up.sendall(request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n", 1))
            answer = b""
            while chunk := up.recv(65536):
                answer += chunk
            if self.dropped < self.drop:
                self.dropped += 1
                return
            conn.sendall(answer)

    def close(self) -> None:
        self.listener.close()


def _http_message(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


@pytest.fixture
def server(practice: Practice) -> Iterator[str]:
    """The practice's app behind uvicorn on a real socket, in this process (a subprocess
    server takes 10-15 s to start on a busy machine; the retries are the client's, not the
    server's). Its lifespan is the practice fixture's, so it is not run again."""
    config = uvicorn.Config(
        practice.http.app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,  # no handlers on a test's captured (and later closed) stderr
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_write_whose_answer_was_lost_lands_once_when_the_client_retries(
    practice: Practice, owner_and_patient: tuple[Client, UUID], server: str
) -> None:
    owner, patient_id = owner_and_patient
    proxy = DroppingProxy(server, drop=2)
    try:
        client = Client(proxy.url, token=owner.token, retry=Retry(first=0.1))
        before = labs_in_log(practice)
        lab = client.record_lab(LabIn.model_validate(lab_body(patient_id)))
        assert proxy.dropped == 2  # two answers lost, the third retry heard
        assert labs_in_log(practice) == before + 1
        assert ledger_of(practice).repository.get(lab.lab_id).id == lab.lab_id
    finally:
        proxy.close()


def test_a_503_is_retried_after_its_retry_after_with_the_same_key(
    practice: Practice, owner_and_patient: tuple[Client, UUID], server: str
) -> None:
    owner, patient_id = owner_and_patient
    proxy = DroppingProxy(server, drop=1, busy=["2", "120"])
    waits: list[float] = []
    try:
        client = Client(proxy.url, token=owner.token, retry=Retry(sleep=waits.append))
        before = labs_in_log(practice)
        client.record_lab(LabIn.model_validate(lab_body(patient_id)))
        # 503 "wait 2 s", 503 "wait 120 s" (capped at 8), then the write with its answer
        # dropped, then its replay.
        assert waits == [2.0, 8.0, 2.0] and proxy.dropped == 1
        assert labs_in_log(practice) == before + 1
    finally:
        proxy.close()


def test_a_client_that_never_hears_back_says_the_write_may_have_been_kept(
    practice: Practice, owner_and_patient: tuple[Client, UUID], server: str
) -> None:
    owner, patient_id = owner_and_patient
    proxy = DroppingProxy(server, drop=100)
    waits: list[float] = []
    try:
        client = Client(proxy.url, token=owner.token, retry=Retry(attempts=3, sleep=waits.append))
        before = labs_in_log(practice)
        with pytest.raises(httpx.TransportError, match=r"after 3 tries.*may have kept it"):
            client.record_lab(LabIn.model_validate(lab_body(patient_id)))
        assert waits == [0.5, 1.0]  # doubling backoff between the tries
        assert labs_in_log(practice) == before + 1  # kept once, however often it was sent
    finally:
        proxy.close()


def test_the_client_sends_a_fresh_key_per_write(
    practice: Practice, owner_and_patient: tuple[Client, UUID]
) -> None:
    owner, patient_id = owner_and_patient
    before = labs_in_log(practice)
    ids = {owner.record_lab(glucose(patient_id)).lab_id for _ in range(2)}
    assert len(ids) == 2 and labs_in_log(practice) == before + 2
    keys = {row[1] for row in key_rows(practice)}
    assert len(keys) >= 3 and all(UUID(k) for k in keys)  # the patient's and both labs'


def test_the_cli_retries_a_lost_answer_and_records_the_lab_once(
    practice: Practice,
    owner_and_patient: tuple[Client, UUID],
    server: str,
    token_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, patient_id = owner_and_patient
    monkeypatch.setenv("CHARTLEDGER_PASSWORD", OWNER_PASSWORD)
    proxy = DroppingProxy(server, drop=0)
    owner_logs_in_remotely(practice, proxy.url, capsys)  # the token is kept for this URL
    proxy.drop = 1
    lab = ["labs", "record", str(patient_id), "--loinc", "2345-7", "--test", "Glucose"]
    lab += ["--value", "5.2", "--unit", "mg/dL", "--lab", "ACME"]
    try:
        before = labs_in_log(practice)
        assert chartledger(["--server", proxy.url, *lab]) == 0
        assert re.fullmatch(r"lab [0-9a-f-]{36} recorded: 5.2 mg/dL\n", capsys.readouterr().out)
        assert proxy.dropped == 1 and labs_in_log(practice) == before + 1
        # Never an answer: one line, exit 1, saying it may have been kept (it was, once).
        proxy.drop = 100
        waits: list[float] = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("api.client_retry.time.sleep", waits.append)
            assert chartledger(["--server", proxy.url, *lab]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "after 6 tries" in err[0] and "may have kept it" in err[0], err
        assert waits == [0.5, 1.0, 2.0, 4.0, 8.0]
        assert labs_in_log(practice) == before + 2
    finally:
        proxy.close()
