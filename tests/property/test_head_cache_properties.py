"""The append path's head cache (events/store.py): whatever order the threads sharing a ledger
call ``commit_to`` in after their commits, the cache never vouches for a stale head."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from events.store import Appended, HeadCache, commit_to

SUBJECTS = ["patient:a", "patient:b", "user:c"]

appends = st.lists(
    st.lists(st.sets(st.sampled_from(SUBJECTS), max_size=2), min_size=1, max_size=3),
    min_size=1,
    max_size=12,
)


@given(appends, st.data())
def test_the_cache_only_ever_holds_the_true_heads_at_its_tip(
    batches: list[list[set[str]]], data: st.DataObject
) -> None:
    cache = HeadCache()
    truth: list[dict[str, tuple[int, int]]] = [{}]  # heads after each position
    pending: list[Appended] = []
    position = 0
    for batch in batches:
        start = position
        heads = cache.lookup(start, set().union(*batch))
        current = dict(truth[-1])
        for subjects in batch:
            for subject in subjects:
                seq = current.get(subject, (0, 0))[0] + 1
                current[subject] = (seq, position)
            truth.append(dict(current))
            position += 1
        touched = set().union(*batch)
        assert all(heads[s] == truth[start][s] for s in heads), "lookup gave a stale head"
        pending.append(
            Appended(start, list(range(start, position)), {s: current[s] for s in touched})
        )
        # Some commits' commit_to calls are late, and land in any order.
        while pending and data.draw(st.booleans()):
            commit_to(cache, pending.pop(data.draw(st.integers(0, len(pending) - 1))))
            _assert_true_at_tip(cache, truth)
    while pending:
        commit_to(cache, pending.pop(data.draw(st.integers(0, len(pending) - 1))))
        _assert_true_at_tip(cache, truth)


def _assert_true_at_tip(cache: HeadCache, truth: list[dict[str, tuple[int, int]]]) -> None:
    if cache.tip is None:
        assert cache.heads == {}
        return
    for subject, head in cache.heads.items():
        assert truth[cache.tip][subject] == head


@given(appends, st.data())
def test_advancing_over_another_writers_leaves_keeps_the_cache_true(
    batches: list[list[set[str]]], data: st.DataObject
) -> None:
    """``advance`` (events/store.py catch_up): the cache, at the tip of its own last commit,
    is brought over leaves another writer appended after it, as read from the log; it then
    vouches for the true heads at the new tip, and an advance from a tip it no longer holds
    changes nothing."""
    cache = HeadCache()
    truth: list[dict[str, tuple[int, int]]] = [{}]
    position = 0
    for batch in batches:
        start = position
        current = dict(truth[-1])
        new: dict[str, tuple[int, int]] = {}
        for subjects in batch:
            for subject in subjects:
                current[subject] = new[subject] = (current.get(subject, (0, 0))[0] + 1, position)
            truth.append(dict(current))
            position += 1
        if data.draw(st.booleans()):  # this writer's own commit
            commit_to(cache, Appended(start, list(range(start, position)), new))
        elif cache.tip is not None:  # another writer's: read back, as catch_up does
            tip, stale = cache.tip, data.draw(st.booleans())
            # catch_up reads every leaf from the cache's tip on: the heads those leaves hold
            read = {s: head for s, head in truth[position].items() if head[1] >= tip}
            cache.advance(tip - 1 if stale else tip, position, read)
            if stale:
                assert cache.tip != position
        _assert_true_at_tip(cache, truth)
