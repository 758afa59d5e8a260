"""Wrapped data keys (LEDGER_FORMAT.md §4.3, wrap format 2): a wrapped key unwraps only under
the master key, name and subject it was wrapped for, and only as written. Any other name or
subject (a row renamed, or moved to another owner), any changed byte, or another master key,
and it does not unwrap: `chartledger verify` reports such a key instead of using it."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from events.keys import KEY_SIZE, WRAPPED_SIZE, KeyError_, unwrap_key, wrap_key

master_keys = st.binary(min_size=32, max_size=32)
data_keys = st.binary(min_size=KEY_SIZE, max_size=KEY_SIZE)
owners = st.one_of(
    st.just("practice"),
    st.builds(
        lambda kind, ident: f"{kind}:{ident}",
        st.sampled_from(["patient", "user"]),
        st.from_regex(r"\A[0-9a-z-]{1,64}\Z"),
    ),
)
ids = st.from_regex(r"\A[0-9a-f]{32}\Z")
texts = st.text(max_size=80)  # any other name or subject, well-formed or not


@given(master_keys, data_keys, owners, ids)
def test_a_wrapped_key_unwraps_as_it_was_wrapped(
    master: bytes, key: bytes, owner: str, ident: str
) -> None:
    name = f"{owner}#{ident}"
    wrapped = wrap_key(master, key, name=name, subject=owner)
    assert len(wrapped) == WRAPPED_SIZE
    assert unwrap_key(master, wrapped, name=name, subject=owner) == key


@given(master_keys, data_keys, owners, ids, texts, texts, st.sampled_from(["name", "subject"]))
def test_another_name_or_subject_does_not_unwrap(
    master: bytes, key: bytes, owner: str, ident: str, other: str, prefix: str, which: str
) -> None:
    name = f"{owner}#{ident}"
    wrapped = wrap_key(master, key, name=name, subject=owner)
    moved = {"name": name, "subject": owner}
    moved[which] = prefix + other if which == "subject" else f"{other}#{ident}"
    assume(moved != {"name": name, "subject": owner})
    with pytest.raises(KeyError_):
        unwrap_key(master, wrapped, name=moved["name"], subject=moved["subject"])


@given(master_keys, data_keys, owners, ids, st.data())
def test_any_bit_of_the_wrapped_key_changed_does_not_unwrap(
    master: bytes, key: bytes, owner: str, ident: str, data: st.DataObject
) -> None:
    name = f"{owner}#{ident}"
    wrapped = bytearray(wrap_key(master, key, name=name, subject=owner))
    bit = data.draw(st.integers(min_value=0, max_value=8 * len(wrapped) - 1))
    wrapped[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(KeyError_):
        unwrap_key(master, bytes(wrapped), name=name, subject=owner)


@given(master_keys, master_keys, data_keys, owners, ids)
def test_another_master_key_does_not_unwrap(
    master: bytes, other: bytes, key: bytes, owner: str, ident: str
) -> None:
    assume(master != other)
    name = f"{owner}#{ident}"
    wrapped = wrap_key(master, key, name=name, subject=owner)
    with pytest.raises(KeyError_):
        unwrap_key(other, wrapped, name=name, subject=owner)


@given(master_keys, data_keys, owners, ids, st.integers(min_value=0, max_value=WRAPPED_SIZE + 8))
def test_a_wrapped_key_cut_or_padded_does_not_unwrap(
    master: bytes, key: bytes, owner: str, ident: str, length: int
) -> None:
    name = f"{owner}#{ident}"
    wrapped = wrap_key(master, key, name=name, subject=owner)
    assume(length != len(wrapped))
    changed = (wrapped + bytes(8))[:length]
    with pytest.raises(KeyError_):
        unwrap_key(master, changed, name=name, subject=owner)
