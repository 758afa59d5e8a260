"""Enrollment (and recovery and approval) codes: the form people copy, and the hash the ledger
keeps instead (``api/auth.py``). Drawn from bytes, never from fresh randomness."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth import one_time_code, recovery_code_hash

SETTINGS = settings(max_examples=200, deadline=None)
FORM = re.compile(r"[A-Z2-7]{5}(?:-[A-Z2-7]{5}){3}")
raws = st.binary(min_size=15, max_size=15)


def bits(raw: bytes) -> int:
    """The 100 bits of ``raw`` that make the code (its first 20 base32 characters)."""
    return int.from_bytes(raw, "big") >> 20


@SETTINGS
@given(raws)
def test_a_code_is_twenty_base32_characters_in_four_groups(raw: bytes) -> None:
    assert FORM.fullmatch(one_time_code(raw))


@SETTINGS
@given(raws, st.sampled_from([str.lower, str.upper, str.swapcase]), st.booleans())
def test_the_hash_is_of_the_code_however_it_is_typed(raw: bytes, case, spaced: bool) -> None:  # type: ignore[no-untyped-def]
    code = one_time_code(raw)
    typed = case(code)
    if spaced:
        typed = " " + typed.replace("-", " - ") + " "
    digest = recovery_code_hash(typed)
    assert digest == recovery_code_hash(code)
    assert re.fullmatch(r"[0-9a-f]{64}", digest) and code not in digest


@SETTINGS
@given(raws, raws)
def test_different_codes_have_different_hashes_and_the_code_keeps_all_100_bits(
    a: bytes, b: bytes
) -> None:
    same_bits = bits(a) == bits(b)
    assert (one_time_code(a) == one_time_code(b)) == same_bits
    assert (
        recovery_code_hash(one_time_code(a)) == recovery_code_hash(one_time_code(b))
    ) == same_bits
