"""Data key names (LEDGER_FORMAT.md §4.3): only the practice's master key mints a name that
`chartledger verify` accepts as one of its own, disposed of or not.

The random nonce is drawn by hypothesis (``key_name``), never made fresh inside a test: a draw
that depends on fresh randomness replays differently and hypothesis fails the run as flaky."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from events.sealing import key_name, key_name_minted_here, mint_key_name
from verify.records import key_owner

owners = st.one_of(
    st.just("practice"),
    st.builds(
        lambda kind, ident: f"{kind}:{ident}",
        st.sampled_from(["patient", "user"]),
        st.from_regex(r"\A[0-9a-z-]{1,64}\Z"),
    ),
)
master_keys = st.binary(min_size=32, max_size=32)
nonces = st.binary(min_size=8, max_size=8).map(bytes.hex)


@given(owners, master_keys)
def test_a_minted_name_names_its_owner_and_is_recognised_by_its_master_key(
    owner: str, master: bytes
) -> None:
    name = mint_key_name(master, owner)
    nonce = name[len(owner) + 1 : len(owner) + 17]
    assert name == key_name(master, owner, nonce)
    assert key_owner(name) == owner
    assert key_name_minted_here(master, name)


@given(owners, master_keys, master_keys)
def test_another_master_key_does_not_recognise_the_name(
    owner: str, master: bytes, other: bytes
) -> None:
    name = mint_key_name(master, owner)
    assert key_name_minted_here(other, name) == (other == master)


@given(owners, master_keys, nonces, st.data())
def test_any_changed_character_of_the_id_is_not_recognised(
    owner: str, master: bytes, nonce: str, data: st.DataObject
) -> None:
    name = key_name(master, owner, nonce)
    at = data.draw(st.integers(len(name) - 32, len(name) - 1))
    digit = data.draw(st.sampled_from("0123456789abcdef").filter(lambda d: d != name[at]))
    assert not key_name_minted_here(master, name[:at] + digit + name[at + 1 :])


@given(owners, master_keys, nonces, st.from_regex(r"\A[0-9a-f]{8}\Z"))
def test_a_name_moved_to_another_owner_is_not_recognised(
    owner: str, master: bytes, nonce: str, ident: str
) -> None:
    name = key_name(master, owner, nonce)
    other = f"patient:{ident}" if owner == "practice" else "practice"
    moved = other + name[len(owner) :]
    assert key_owner(moved) == other
    assert not key_name_minted_here(master, moved)
