"""Bates numbers (legal_hold/review/bates.py) for any prefix, start and document page counts:
unique, consecutive, one width across the production, and in order as text and as numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legal_hold.review.bates import MIN_DIGITS, assign, check_prefix
from legal_hold.review.errors import InvalidReviewInput

ASCII_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
prefixes = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(ASCII_LETTERS),
    st.text(alphabet=ASCII_LETTERS + "0123456789_-", max_size=23),
)
starts = st.one_of(st.integers(1, 1000), st.integers(1, 10**12))
page_counts = st.lists(st.integers(1, 40), max_size=60)


@settings(max_examples=200, deadline=None)
@given(prefixes, starts, page_counts)
def test_labels_are_unique_consecutive_one_width_and_sort_as_numbers(prefix, start, counts):
    ranges = assign(prefix, start, counts)
    labels = [label for r in ranges for label in r.labels()]
    assert len(labels) == sum(counts) == len(set(labels))
    width = {len(label) for label in labels}
    assert len(width) <= 1
    numbers = [int(label[len(prefix) :]) for label in labels]
    assert numbers == list(range(start, start + len(labels)))
    assert all(label.startswith(prefix) for label in labels)
    assert all(label[len(prefix) :].isdigit() for label in labels)
    assert all(len(label) - len(prefix) >= MIN_DIGITS for label in labels)
    if labels:  # zero-padded to the last number's width, never wider than needed above 7
        assert len(labels[-1]) - len(prefix) == max(MIN_DIGITS, len(str(numbers[-1])))
    assert sorted(labels) == labels
    for r, count in zip(ranges, counts, strict=True):
        assert r.count == count and r.labels()[0] == r.beg and r.labels()[-1] == r.end


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_a_prefix_is_accepted_exactly_when_it_is_a_letter_then_letters_digits_dash_underscore(
    prefix,
):
    valid = (
        0 < len(prefix) <= 24
        and prefix[0] in ASCII_LETTERS
        and all(c in ASCII_LETTERS + "0123456789_-" for c in prefix)
    )
    if valid:
        check_prefix(prefix)
    else:
        with pytest.raises(InvalidReviewInput, match="bates prefix"):
            check_prefix(prefix)


@given(st.integers(max_value=0))
def test_numbering_starts_at_one_or_later(start):
    with pytest.raises(InvalidReviewInput, match="bates start"):
        assign("ABC", start, [1])
