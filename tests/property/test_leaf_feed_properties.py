"""The leaf feed hands the checkpointer only leaves that are truly at the positions asked for,
whatever order commits report in and however far the checkpointer lags."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from events.log import LeafFeed


def leaf(position: int) -> tuple[bytes, list[tuple[str, int, int | None]]]:
    return (b"leaf %d" % position, [])


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 40), st.integers(1, 8)),
            st.tuples(st.just("take"), st.integers(0, 40), st.integers(0, 12)),
        ),
        max_size=40,
    )
)
def test_whatever_the_feed_hands_out_is_the_log_from_where_it_was_asked(
    steps: list[tuple[str, int, int]],
) -> None:
    feed = LeafFeed()
    for op, start, count in steps:
        if op == "add":
            feed.add(start, [leaf(p) for p in range(start, start + count)])
            continue
        found = feed.take(start, start + count)
        assert len(found) <= count
        assert found == [leaf(p) for p in range(start, start + len(found))]


def test_a_checkpoint_inside_a_transaction_gets_all_but_that_transactions_leaves() -> None:
    feed = LeafFeed()
    feed.add(0, [leaf(p) for p in range(0, 100)])
    feed.add(100, [leaf(p) for p in range(100, 200)])
    assert feed.take(0, 250) == [leaf(p) for p in range(200)]  # 200..249: not committed yet
    feed.add(200, [leaf(p) for p in range(200, 250)])
    assert feed.take(250, 260) == []  # nothing from 250 on is here
