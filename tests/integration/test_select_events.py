"""events/postgres.py's select_events (its SQL made once per shape) returns what eventsourcing's
own returns, for every combination of its arguments."""

from __future__ import annotations

import itertools

import pytest
from eventsourcing.postgres import PostgresAggregateRecorder

from events.ledger import Ledger
from tests.support import Chart, patient


@pytest.mark.postgres
@pytest.mark.parametrize("store_config", ["postgres"], indirect=True)
def test_every_shape_of_select_events_returns_what_eventsourcings_own_returns(
    ledger: Ledger,
) -> None:
    chart = Chart(subjects=(patient(),), text="v1")
    for i in range(5):
        chart.note(subjects=(patient(),), text=f"v{i + 2}")
    ledger.save(chart)
    recorder = ledger.recorder
    found = 0
    for gt, lte, desc, limit in itertools.product(
        (None, 0, 2), (None, 4, 6), (False, True), (None, 1, 3)
    ):
        args = {"gt": gt, "lte": lte, "desc": desc, "limit": limit}
        ours = recorder.select_events(chart.id, **args)
        theirs = PostgresAggregateRecorder.select_events(recorder, chart.id, **args)
        assert ours == theirs, args
        found += bool(ours)
    assert found > 40  # not vacuous: most of the 54 shapes find events
