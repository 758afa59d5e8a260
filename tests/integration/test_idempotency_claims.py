"""An idempotency key's row is written with its request's first append, in the same
transaction (events/idempotency.py), on both stores: no row without the write, no write
without the row, no second write under a key already taken."""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from events import idempotency
from events import postgres as pg_recorder
from events.idempotency import TABLE, Claim
from events.ledger import Ledger
from tests.support import Chart, patient


def claim(key: str = "k", caller: str = "user-1", lifetime: int = 3600) -> Claim:
    now = int(time.time())
    return Claim(key, b"d" * 32, uuid.uuid4().hex, now, now + lifetime, caller=caller)


def rows(ledger: Ledger) -> list[tuple[object, ...]]:
    found = ledger.db.query(f"SELECT caller, key, token, position FROM {TABLE} ORDER BY caller")
    return [tuple(row) for row in found]


def event_count(ledger: Ledger) -> int:
    return int(ledger.db.query("SELECT COUNT(*) FROM stored_events")[0][0])


def test_the_first_append_of_a_keyed_request_carries_its_row(ledger: Ledger) -> None:
    mine = claim()
    with idempotency.claiming(mine):
        ledger.save(Chart(subjects=(patient(),), text="first"))
        position = event_count(ledger) - 1
        ledger.save(Chart(subjects=(patient(),), text="second"))  # no second row
    assert mine.claimed
    assert rows(ledger) == [("user-1", "k", mine.token, position)]
    with ledger.db.read() as c:
        assert idempotency.kept(c, mine)
        assert not idempotency.kept(c, claim())  # the same key, another request's token


def test_an_append_that_fails_leaves_no_row(ledger: Ledger) -> None:
    mine, before = claim(), event_count(ledger)

    def fail(cursor: object, appended: list[int]) -> None:
        raise RuntimeError("after the rows, before COMMIT")

    with idempotency.claiming(mine), pytest.raises(RuntimeError):
        ledger.save(Chart(subjects=(patient(),), text="lost"), after_append=fail)
    assert not mine.claimed and rows(ledger) == [] and event_count(ledger) == before


def test_a_key_taken_refuses_another_requests_whole_append(ledger: Ledger) -> None:
    with idempotency.claiming(claim()):
        ledger.save(Chart(subjects=(patient(),), text="first"))
    before, second = event_count(ledger), claim()
    with idempotency.claiming(second), pytest.raises(IntegrityError):
        ledger.save(Chart(subjects=(patient(),), text="again"))
    assert not second.claimed and event_count(ledger) == before and len(rows(ledger)) == 1
    # Another caller's key of the same name is theirs.
    with idempotency.claiming(claim(caller="user-2")):
        ledger.save(Chart(subjects=(patient(),), text="theirs"))
    assert [r[0] for r in rows(ledger)] == ["user-1", "user-2"]


def test_an_expired_key_is_taken_again(ledger: Ledger) -> None:
    with idempotency.claiming(claim(lifetime=1)):
        ledger.save(Chart(subjects=(patient(),), text="yesterday"))
    time.sleep(1.1)
    again = claim()
    with idempotency.claiming(again):
        ledger.save(Chart(subjects=(patient(),), text="today"))
    assert [r[2] for r in rows(ledger)] == [again.token]


def test_an_unauthenticated_claim_writes_no_row(ledger: Ledger) -> None:
    anonymous = claim()
    anonymous.caller = None
    with idempotency.claiming(anonymous):
        ledger.save(Chart(subjects=(patient(),), text="no caller"))
    assert rows(ledger) == [] and not anonymous.claimed


def test_a_keyed_append_retried_after_its_commit_went_through_is_kept_not_a_conflict(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unknown outcome of issue 23: COMMIT went through but the writer heard an error, so
    PostgreSQL's recorder appends again and would collide with its own first try. With the
    request's key row in the store, that is the write kept, not a 409. Only PostgreSQL's
    recorder retries an append (SQLite's has no connection to lose), so this is a PostgreSQL
    case."""
    if ledger.db.dialect != "postgres":
        pytest.skip("only PostgreSQL's recorder retries an append")
    real = pg_recorder.commit_to
    lost: list[int] = []

    def answer_lost_once(cache: object, appended: object) -> None:
        real(cache, appended)  # type: ignore[arg-type]
        if len(lost) < 2:  # once for the keyed save, once for the unkeyed one
            lost.append(1)
            # As psycopg reports it, under eventsourcing's own error (events/store_errors.py).
            lost_connection = psycopg.OperationalError("server closed the connection unexpectedly")
            raise OperationalError(str(lost_connection)) from lost_connection

    monkeypatch.setattr(pg_recorder, "commit_to", answer_lost_once)
    mine, before = claim(), event_count(ledger)
    chart = Chart(subjects=(patient(),), text="kept once")
    with idempotency.claiming(mine):
        ledger.save(chart)  # no IntegrityError: the first try is found by its key
    assert mine.claimed and event_count(ledger) == before + 1
    assert ledger.repository.get(chart.id).texts == ["kept once"]
    # Without a key, the recorder finds its own events (the very sealed bytes it sent) before
    # appending again (events/postgres.py): kept once too, not the false conflict the issue saw.
    unkeyed = Chart(subjects=(patient(),), text="unkeyed")
    ledger.save(unkeyed)
    assert event_count(ledger) == before + 2 and len(lost) == 2
    assert ledger.repository.get(unkeyed.id).texts == ["unkeyed"]
