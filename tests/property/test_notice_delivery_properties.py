"""The hold report's delivery states (legal_hold/notice_failures.delivery_states), for any
custodians, items due and failures recorded: one state per custodian, in order; a hold that
sends nothing says none; an acknowledgement wins; a custodian is failing exactly when a
failure recorded for them is of an item still due on this hold, with the earliest start and the
most tries of those; failures of other holds, or of items no longer due, change nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.custodians import CustodianStatus, Due
from legal_hold.notice_failures import Failing, delivery_states

SETTINGS = settings(max_examples=200, deadline=None)
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
HOLD, OTHER_HOLD = UUID(int=1), UUID(int=2)
PEOPLE = [UUID(int=100 + n) for n in range(4)]
KINDS = ("notice", "reminder", "escalation")

moments = st.integers(min_value=0, max_value=10_000).map(lambda s: T0 + timedelta(seconds=s))


@st.composite
def custodians(draw: st.DrawFn) -> list[CustodianStatus]:
    people = draw(st.lists(st.sampled_from(PEOPLE), unique=True, max_size=4))
    version = draw(st.none() | st.integers(min_value=1, max_value=3))
    return [
        CustodianStatus(
            custodian_id=person,
            version=version,
            notified_at=draw(st.none() | moments),
            acknowledged_at=draw(st.none() | moments),
            reminders=0,
            escalated_at=None,
        )
        for person in people
    ]


keys = st.tuples(
    st.sampled_from((HOLD, OTHER_HOLD)),
    st.sampled_from(PEOPLE),
    st.integers(min_value=1, max_value=3),
    st.sampled_from(KINDS),
)
dues = st.lists(keys.map(lambda k: Due(k[0], k[1], k[2], k[3], T0)), max_size=8)


@st.composite
def failures(draw: st.DrawFn) -> list[Failing]:
    found = []
    for key in draw(st.lists(keys, unique=True, max_size=8)):
        first = draw(moments)
        found.append(
            Failing(
                *key,
                first_failed=first,
                last_failed=first + timedelta(seconds=draw(st.integers(0, 600))),
                tries=draw(st.integers(min_value=1, max_value=50)),
                failure=draw(st.sampled_from(("OutboxError", "OSError"))),
            )
        )
    return found


@SETTINGS
@given(custodians(), dues, failures(), st.booleans())
def test_each_custodian_has_the_state_its_record_and_the_failures_still_due_give(
    people: list[CustodianStatus], due: list[Due], failed: list[Failing], sends: bool
) -> None:
    states = delivery_states(HOLD, people, due, failed, sends=sends)
    assert [s.custodian_id for s in states] == [c.custodian_id for c in people]
    still_due = {(d.hold_id, d.custodian_id, d.version, d.kind) for d in due}
    for c, s in zip(people, states, strict=True):
        mine = [
            f
            for f in failed
            if f.hold_id == HOLD and f.custodian_id == c.custodian_id and f.key() in still_due
        ]
        if not sends or c.version is None:
            expected = "none"
        elif c.acknowledged_at is not None:
            expected = "acknowledged"
        elif mine:
            expected = "failing"
        else:
            expected = "sent" if c.notified_at is not None else "due"
        assert s.state == expected
        if expected == "failing":
            assert s.failing_since == min(f.first_failed for f in mine)
            assert s.tries == max(f.tries for f in mine)
            assert s.failure in {f.failure for f in mine}
        else:
            assert (s.failing_since, s.tries, s.failure) == (None, 0, None)


@SETTINGS
@given(custodians(), dues, failures(), st.booleans())
def test_failures_of_other_holds_or_of_items_no_longer_due_change_nothing(
    people: list[CustodianStatus], due: list[Due], failed: list[Failing], sends: bool
) -> None:
    still_due = {(d.hold_id, d.custodian_id, d.version, d.kind) for d in due}
    relevant = [f for f in failed if f.hold_id == HOLD and f.key() in still_due]
    assert delivery_states(HOLD, people, due, failed, sends=sends) == delivery_states(
        HOLD, people, due, relevant, sends=sends
    )
