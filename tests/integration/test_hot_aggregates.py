"""events/hot.py on SQLite and PostgreSQL: the hot cache answers what the store holds now (a
change committed by another process included), several aggregates in one call, and never
changes an object it returned before."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.application import AggregateNotFoundError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.ledger import Ledger
from tests.support import QUIET, Chart


def test_a_get_brings_the_aggregate_up_to_date_with_another_processs_commit(
    ledger: Ledger,
) -> None:
    chart = Chart(subjects=("patient:1",), text="a")
    ledger.save(chart)
    (first,) = ledger.hot.get(chart.id)
    assert first.texts == ["a"]
    other = Ledger(ledger.config, **QUIET)  # its own connections and cache, as another process
    try:
        theirs = other.repository.get(chart.id)
        theirs.note(subjects=("patient:1",), text="b")
        other.save(theirs)
    finally:
        other.close()
    (now,) = ledger.hot.get(chart.id)
    assert (now.version, now.texts) == (2, ["a", "b"])
    assert (first.version, first.texts) == (1, ["a"])  # what it returned before is untouched
    assert ledger.hot.cached(chart.id) is now


def test_one_get_answers_several_aggregates_in_the_order_asked(ledger: Ledger) -> None:
    charts = [Chart(subjects=(f"patient:{i}",), text=str(i)) for i in range(3)]
    ledger.save(*charts)
    charts[1].note(subjects=("patient:1",), text="again")
    ledger.save(charts[1])
    ids = [charts[2].id, charts[0].id, charts[1].id]
    assert [c.texts for c in ledger.hot.get(*ids)] == [["2"], ["0"], ["1", "again"]]


def test_an_aggregate_with_no_events_is_not_found(ledger: Ledger) -> None:
    chart = Chart(subjects=("patient:1",), text="a")
    ledger.save(chart)
    with pytest.raises(AggregateNotFoundError):
        ledger.hot.get(chart.id, uuid.uuid4())
    assert ledger.hot.cached(chart.id) is not None  # the one that exists was still kept


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=25))
def test_hot_gets_agree_with_a_full_replay_after_any_sequence_of_changes(
    ledger: Ledger, steps: list[tuple[int, bool]]
) -> None:
    """Each step changes chart ``i`` (creating it the first time) and, if told, reads it hot:
    every hot read equals the chart replayed from all its events."""
    charts: dict[int, uuid.UUID] = {}
    for i, read in steps:
        if i in charts:
            chart = ledger.repository.get(charts[i])
            chart.note(subjects=(f"patient:{i}",), text=f"{i}.{chart.version}")
        else:
            chart = Chart(subjects=(f"patient:{i}",), text=f"{i}.0")
            charts[i] = chart.id
        ledger.save(chart)
        if read:
            (hot,) = ledger.hot.get(chart.id)
            replayed = ledger.repository.get(chart.id)
            assert (hot.version, hot.texts) == (replayed.version, replayed.texts)
    every = ledger.hot.get(*charts.values())
    assert [(c.version, c.texts) for c in every] == [
        (r.version, r.texts) for r in (ledger.repository.get(i) for i in charts.values())
    ]
