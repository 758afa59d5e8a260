"""The append path's shortcuts (events/store.py, events/sqlite.py, events/postgres.py): a refused
append leaves nothing and the connection goes on; notification ids are the rows' own; the
checkpointer's leaves handed over in memory give the same roots as the store, also when another
writer's leaves lie in between. On both stores."""

from __future__ import annotations

import copy

import pytest
from eventsourcing.persistence import IntegrityError

from events.config import StoreConfig
from events.ledger import Ledger
from events.log import subject_heads, subject_heads_root
from events.postgres import ROWS_AS_VALUES
from tests.integration.test_ledger_store import assert_both_verify, leaves, raw
from tests.support import Chart, patient
from verify.checkpoint import UnverifiedCheckpoint, parse_note
from verify.merkle import root_hash

QUIET = {"every_events": 10**9, "every_seconds": 10**9}


def _assert_checkpoint_is_the_stores(config: StoreConfig, checkpoint: UnverifiedCheckpoint) -> None:
    assert checkpoint == parse_note(_notes(config)[checkpoint.size])
    assert checkpoint.root == root_hash(leaves(config)[: checkpoint.size])
    with raw(config) as db:
        cursor = _Cursor(db)
        heads = subject_heads(cursor, checkpoint.size)
    assert checkpoint.subjects_root == subject_heads_root(heads)


def _notes(config: StoreConfig) -> dict[int, bytes]:
    with raw(config) as db:
        return {
            size: bytes(note) for size, note in db.rows("SELECT size, note FROM ledger_checkpoints")
        }


class _Cursor:
    """The little of events.db.Cursor that subject_heads uses, over the tests' raw connection."""

    def __init__(self, db) -> None:  # type: ignore[no-untyped-def]
        self.db, self.result = db, []

    def execute(self, sql, params=()):  # type: ignore[no-untyped-def]
        self.result = self.db.rows(sql, tuple(params))

    def fetchall(self):  # type: ignore[no-untyped-def]
        return self.result


def test_a_refused_append_leaves_nothing_and_the_next_append_goes_on_from_the_true_tip(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    subject = patient()
    chart = Chart(subjects=(subject,), text="opened")
    ledger.save(chart)
    twin = copy.deepcopy(chart)
    chart.note(subjects=(subject,), text="first writer")
    twin.note(subjects=(subject,), text="second writer, same version")
    ledger.save(chart)
    before = len(leaves(store_config))
    with pytest.raises(IntegrityError):
        ledger.save(twin)
    assert len(leaves(store_config)) == before

    chart.note(subjects=(subject,), text="after the refusal")
    recordings = ledger.save(chart)
    assert len(leaves(store_config)) == before + 1
    with raw(store_config) as db:
        column = "rowid" if not db.postgres else "notification_id"
        (stored,) = db.rows(
            f"SELECT {column} FROM stored_events "
            "WHERE originator_id = ? AND originator_version = ?",
            (db.stream(chart.id), chart.version),
        )
    assert [r.notification.id for r in recordings] == [stored[0]]
    _assert_checkpoint_is_the_stores(store_config, ledger.checkpointer.issue())
    assert_both_verify(store_config, capsys, before + 1)


# PostgreSQL sends up to ROWS_AS_VALUES rows as one VALUES list, and more as arrays.
@pytest.mark.parametrize("count", [1, 7, ROWS_AS_VALUES, ROWS_AS_VALUES + 1, 40])
def test_a_batch_gets_the_notification_ids_of_its_own_rows_in_order(
    ledger: Ledger, store_config: StoreConfig, count: int, capsys: pytest.CaptureFixture[str]
) -> None:
    charts = [Chart(subjects=(patient(), patient()), text=f"chart {i}") for i in range(count)]
    recordings = ledger.save(*charts)
    with raw(store_config) as db:
        column = "rowid" if not db.postgres else "notification_id"
        expected = [
            db.rows(
                f"SELECT {column} FROM stored_events WHERE originator_id = ?",
                (db.stream(chart.id),),
            )[0][0]
            for chart in charts
        ]
    assert [r.notification.id for r in recordings] == expected
    assert expected == sorted(expected)
    assert_both_verify(store_config, capsys, len(leaves(store_config)))


def test_checkpoints_sign_the_stores_roots_when_two_writers_interleave(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    other = Ledger(store_config, **QUIET)
    try:
        shared = patient()
        for i in range(6):
            writer = ledger if i % 3 else other
            subjects = (shared, patient()) if i % 2 else (shared,)
            writer.save(*[Chart(subjects=subjects, text=f"{i}.{j}") for j in range(i + 1)])
            for issuer in (ledger, other):
                _assert_checkpoint_is_the_stores(store_config, issuer.checkpointer.issue())
    finally:
        other.close()
    assert_both_verify(store_config, capsys, len(leaves(store_config)))
