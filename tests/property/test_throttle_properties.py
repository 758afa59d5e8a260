"""The login throttle's rule (domain/throttle.py), as a pure function of one (username, address)
pair's failure history: an attacker who tries whenever allowed meets waits that double after a
few failures, up to a cap; a refused attempt changes nothing; Retry-After is exact; a quiet
pair is forgotten; and the account-wide lock never closes an address the account knows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.throttle import (
    ACCOUNT_LOCK_FAILURES,
    PairFailures,
    ThrottlePolicy,
    account_locked,
    after_failure,
    current,
    delay_after,
    retry_after,
)

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
SETTINGS = settings(max_examples=300, deadline=None)


@st.composite
def policies(draw: st.DrawFn) -> ThrottlePolicy:
    first = draw(st.integers(1, 120))
    most = draw(st.integers(first, 4 * 3600))
    return ThrottlePolicy(
        failures_before_wait=draw(st.integers(1, 8)),
        first_delay=timedelta(seconds=first),
        max_delay=timedelta(seconds=most),
        forget_after=timedelta(seconds=draw(st.integers(most + 1, 2 * 86400))),
    )


# Seconds between one attempt and the next, as an attacker (or a clumsy typist) spaces them.
gaps = st.lists(st.integers(0, 7200), min_size=1, max_size=60)


def play(policy: ThrottlePolicy, spacing: list[int]) -> list[tuple[datetime, int, PairFailures]]:
    """Every attempt of a pair that only ever fails: (when, the wait it met, the failures after
    it). An attempt that meets a wait is refused and counts for nothing."""
    failures, at, seen = PairFailures(), START, []
    for gap in spacing:
        at += timedelta(seconds=gap)
        wait = retry_after(failures, at, policy)
        if not wait:
            failures = after_failure(failures, at, policy)
        seen.append((at, wait, failures))
    return seen


@SETTINGS
@given(policies(), gaps)
def test_waits_double_after_a_few_failures_up_to_the_cap(
    policy: ThrottlePolicy, spacing: list[int]
) -> None:
    for at, _, failures in play(policy, spacing):
        if failures.last_at != at:
            continue  # refused: nothing new to wait for
        wait = retry_after(failures, at, policy)
        n = failures.count
        if n < policy.failures_before_wait:
            assert wait == 0
        else:
            doubled = policy.first_delay.total_seconds() * 2 ** (n - policy.failures_before_wait)
            assert wait == min(doubled, policy.max_delay.total_seconds())
        assert wait <= policy.max_delay.total_seconds()


@SETTINGS
@given(policies(), st.integers(0, 200), st.integers(0, 200))
def test_one_more_failure_never_shortens_the_wait(policy: ThrottlePolicy, n: int, m: int) -> None:
    low, high = sorted((n, m))
    assert delay_after(low, policy) <= delay_after(high, policy) <= policy.max_delay


@SETTINGS
@given(policies(), gaps)
def test_a_refused_attempt_changes_nothing_and_retry_after_is_exact(
    policy: ThrottlePolicy, spacing: list[int]
) -> None:
    before = PairFailures()
    for at, wait, failures in play(policy, spacing):
        if wait:
            assert failures == before
            later = at + timedelta(seconds=wait)
            assert retry_after(failures, later, policy) == 0
            assert retry_after(failures, later - timedelta(seconds=1), policy) > 0
        before = failures


@SETTINGS
@given(policies(), gaps, st.integers(0, 3 * 86400))
def test_a_pair_quiet_for_long_enough_is_forgotten(
    policy: ThrottlePolicy, spacing: list[int], quiet: int
) -> None:
    *_, (at, _, failures) = play(policy, spacing)
    assert failures.last_at is not None
    later = failures.last_at + timedelta(seconds=quiet)
    later = max(later, at)
    if later - failures.last_at >= policy.forget_after:
        assert current(failures, later, policy) == PairFailures()
        assert retry_after(failures, later, policy) == 0
        assert after_failure(failures, later, policy).count == 1
    else:
        assert current(failures, later, policy) == failures


@SETTINGS
@given(policies(), st.integers(1, 24 * 3600))
def test_an_address_trying_whenever_allowed_gets_few_guesses(
    policy: ThrottlePolicy, window: int
) -> None:
    """However an attacker times their tries from one address, the guesses in a window are at
    most the free ones plus one per doubling wait that fits, then one per capped wait."""
    failures, at, guesses = PairFailures(), START, 0
    end = START + timedelta(seconds=window)
    while at <= end:
        wait = retry_after(failures, at, policy)
        if wait:
            at += timedelta(seconds=wait)
            continue
        failures, guesses = after_failure(failures, at, policy), guesses + 1
    bound, spent, n = policy.failures_before_wait, timedelta(0), policy.failures_before_wait
    while spent <= timedelta(seconds=window):
        spent += delay_after(n, policy)
        n, bound = n + 1, bound + 1
    assert guesses <= bound


@given(st.integers(0, 10 * ACCOUNT_LOCK_FAILURES), st.booleans())
def test_the_account_locks_only_after_a_hundred_in_a_row_and_never_a_known_address(
    failures: int, known: bool
) -> None:
    assert account_locked(failures, known) == (failures >= 100 and not known)
