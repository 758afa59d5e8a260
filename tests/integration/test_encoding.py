"""What the mapper writes: canonical records, tagged payload values, metadata kept as given."""

from __future__ import annotations

import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate, event

from events.config import StoreConfig
from events.context import acting
from events.ledger import Ledger
from tests.support import init_practice, patient
from verify.canonical import EncodeError, decode
from verify.records import key_owner, parse_header, parse_leaf, split_record


class LabResult(Aggregate):
    @event("Received")
    def __init__(
        self,
        subjects: tuple[str, ...],
        value: Decimal,
        unit: str,
        order_id: UUID,
        collected: datetime,
        birth_date: date,
        original_time: str | None = None,
    ) -> None:
        self.value = value


class Reading(Aggregate):
    @event("Taken")
    def __init__(self, subjects: tuple[str, ...], value: float) -> None:
        self.value = value


@pytest.fixture
def ledger(store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch) -> Ledger:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    yield ledger
    ledger.close()


def _raw_rows(ledger: Ledger) -> list[tuple[int, bytes, bytes]]:
    with ledger.db.read() as c:
        c.execute(
            "SELECT l.position, e.state, l.leaf FROM ledger_leaves l JOIN stored_events e "
            "ON e.position = l.position ORDER BY l.position"
        )
        return [(p, bytes(s), bytes(leaf)) for p, s, leaf in c.fetchall()]


def test_payload_values_come_back_with_their_types(ledger: Ledger) -> None:
    order, subject = uuid4(), patient()
    collected = datetime(2026, 11, 24, 8, 30, 1, 123456, tzinfo=UTC)
    lab = LabResult(
        subjects=(subject,),
        value=Decimal("5.2"),
        unit="mg/dL",
        order_id=order,
        collected=collected,
        birth_date=date(1961, 2, 3),
    )
    ledger.save(lab)
    again = ledger.repository.get(lab.id)
    received = next(iter(ledger.events.get(lab.id)))
    assert again.value == Decimal("5.2") and str(again.value) == "5.2"
    assert received.unit == "mg/dL"
    assert received.order_id == order and received.collected == collected
    assert received.birth_date == date(1961, 2, 3)
    assert received.subjects == (subject,)


def test_floats_are_refused_and_nothing_is_written(ledger: Ledger) -> None:
    before = len(_raw_rows(ledger))
    with pytest.raises(EncodeError, match="floats are not allowed"):
        ledger.save(Reading(subjects=(patient(),), value=5.2))
    assert len(_raw_rows(ledger)) == before


def test_header_keeps_actor_session_and_source_time_exactly_as_given(ledger: Ledger) -> None:
    who, subject = f"user:{uuid4()}", patient()
    source_time = "Tue, 24 Nov 2026 08:30:01 -0500"
    with acting(who, "session-7"):
        ledger.save(
            LabResult(
                subjects=(subject,),
                value=Decimal("1"),
                unit="mmol/L",
                order_id=uuid4(),
                collected=datetime.now(UTC),
                birth_date=date(2000, 1, 1),
                original_time=source_time,
            )
        )
    _, state, _ = _raw_rows(ledger)[-1]
    header = parse_header(split_record(state)[0])
    assert (header.actor, header.session, header.original) == (who, "session-7", source_time)
    assert header.subjects == (subject,) and key_owner(header.key) == subject


def test_every_stored_record_header_and_leaf_is_canonical(ledger: Ledger) -> None:
    for subject in (patient(), patient()):
        ledger.save(
            LabResult(
                subjects=(subject,),
                value=Decimal("0.001"),
                unit="g/L",
                order_id=uuid4(),
                collected=datetime.now(UTC),
                birth_date=date(1990, 5, 6),
            )
        )
    rows = _raw_rows(ledger)
    assert len(rows) >= 3
    for _, state, leaf in rows:
        # The generic decoder sorts and re-encodes from scratch: the fast writers must agree.
        record = decode(state)
        decode(record["header"])
        decode(leaf)
        parse_leaf(leaf)


def test_payload_text_never_reaches_the_store_in_the_clear(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    marker = "Unit-4711-mg/dL-marker"
    ledger.save(
        LabResult(
            subjects=(patient(),),
            value=Decimal("7.7"),
            unit=marker,
            order_id=uuid4(),
            collected=datetime.now(UTC),
            birth_date=date(1970, 1, 1),
        )
    )
    assert all(marker.encode() not in state for _, state, _ in _raw_rows(ledger))
    if store_config.database_url is None:
        ledger.close()
        with sqlite3.connect(store_config.sqlite_path) as raw:
            raw.execute("PRAGMA wal_checkpoint(FULL)")
        assert marker.encode() not in store_config.sqlite_path.read_bytes()
