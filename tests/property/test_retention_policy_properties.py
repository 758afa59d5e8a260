"""The retention rules on drawn policies, floors, birth dates and encounter dates: a policy the
floor accepts keeps every record at least as long as the floor does (the floor compares each
number, which is enough since a record's retention only grows with each); a rule keeping adults
less than the floor keeps some adult's record less; a record is eligible exactly from its
``retain_until`` on, which honours every rule; and a book adopts exactly what the floor accepts,
numbering each name's versions 1, 2, ..."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from legal_hold.errors import BelowFloor
from legal_hold.holds import CATEGORIES
from legal_hold.policies import Floor, PolicyBook
from legal_hold.retention import Policy, Rule, add_years, eligibility

YEARS = st.integers(0, 30)
rules = st.builds(Rule, YEARS, YEARS)
floors = st.builds(Floor, YEARS, YEARS, st.integers(1, 30))
days = st.dates(date(1900, 1, 1), date(2100, 12, 31))
categories = st.sets(st.sampled_from(CATEGORIES), max_size=4)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    named = draw(st.dictionaries(st.sampled_from(CATEGORIES), rules, max_size=4))
    return Policy("drawn", {**named, "*": draw(rules)}, draw(st.integers(1, 30)))


@given(floors, policies(), categories, days, days, days)
def test_a_policy_at_or_above_the_floor_keeps_every_record_at_least_as_long(
    floor: Floor, policy: Policy, held: set[str], birth: date, first: date, last: date
) -> None:
    if floor.shortfalls(policy):
        return
    first, last = min(first, last), max(first, last)
    kept = policy.retain_until(held, birth, last, first)
    assert kept >= floor.as_policy().retain_until(held, birth, last, first)


@given(floors, policies(), days)
def test_a_rule_keeping_adults_less_than_the_floor_keeps_some_adults_record_less(
    floor: Floor, policy: Policy, last: date
) -> None:
    short = [c for c, r in sorted(policy.rules.items()) if r.adult_years < floor.adult_years]
    assert bool(short) <= bool(floor.shortfalls(policy))
    birth = date(1850, 1, 1)  # an adult under any majority age at any drawn encounter
    for category in short:
        kept = policy.retain_until({category}, birth, last)
        assert kept < floor.as_policy().retain_until({category}, birth, last)


@given(policies(), categories, days, st.lists(days, min_size=1, max_size=3), days, days)
def test_eligibility_starts_at_retain_until_which_honours_every_rule_and_no_later_encounter(
    policy: Policy, held: set[str], birth: date, seen: list[date], later: date, on: date
) -> None:
    first, last = min(seen), max(seen)
    until, eligible = eligibility(policy, held, birth, (first, last), on)
    assert eligible == (on >= until) and until >= last
    majority = add_years(birth, policy.majority_age)
    for rule in (policy.rule(c) for c in held or {"*"}):
        assert until >= add_years(last, rule.adult_years)
        if first < majority:  # care given in minority keeps the minor rule
            assert until >= add_years(majority, rule.minor_years)
    # A later encounter never brings the day forward: what was kept stays kept.
    if later >= last:
        again, still = eligibility(policy, held, birth, (first, later), on)
        assert again >= until and still <= eligible


@given(policies(), categories, days, days, days, st.tuples(*[st.integers(0, 5)] * 3))
def test_retention_only_grows_with_each_number_of_a_policy(
    policy: Policy, held: set[str], birth: date, first: date, last: date, more: tuple[int, ...]
) -> None:
    first, last = min(first, last), max(first, last)
    more_adult, more_minor, older = more
    longer = Policy(
        policy.name,
        {
            c: Rule(r.adult_years + more_adult, r.minor_years + more_minor)
            for c, r in policy.rules.items()
        },
        min(30, policy.majority_age + older),
    )
    assert longer.retain_until(held, birth, last, first) >= policy.retain_until(
        held, birth, last, first
    )


@given(floors, st.lists(st.tuples(st.sampled_from(["a", "b"]), policies()), max_size=6))
def test_the_book_adopts_exactly_what_the_floor_accepts_numbering_each_name(
    floor: Floor, attempts: list[tuple[str, Policy]]
) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    owner = UUID(int=1)
    book = PolicyBook.start(floor, by=owner, at=at)
    expected: dict[str, int] = {}
    for name, drawn in attempts:
        policy = Policy(name, drawn.rules, drawn.majority_age)
        if floor.shortfalls(policy):
            with pytest.raises(BelowFloor):
                book.adopt(policy, by=owner, at=at)
            continue
        expected[name] = expected.get(name, 0) + 1
        adopted = book.adopt(policy, by=owner, at=at)
        assert (adopted.name, adopted.version) == (name, expected[name])
        assert book.policy(name, expected[name]) == adopted
    assert [a.policy.label for a in book.adoptions] == [
        a.policy.label for a in book.adoptions if not floor.shortfalls(a.policy)
    ]
