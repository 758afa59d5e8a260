"""Merkle roots and proofs hold for any log and fail for any change to what they prove.

The naive tree in ``tests/reference_merkle.py`` is the oracle for roots and proofs. Logs have
1..3000 leaves, derived from a count and a random seed so that drawing one stays cheap.

A changed tree size is tested with the root of a tree of that size: an RFC 9162 proof binds the
size only through its shape, so with the old root it may still verify when the shapes agree
(see ``test_inclusion_proof_binds_the_size_only_through_its_shape`` in the unit tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests import reference_merkle as reference
from verify.errors import VerificationError
from verify.merkle import (
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    leaf_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

MAX_LEAVES = 3000
FEW = settings(max_examples=60, deadline=None)
MANY = settings(max_examples=200, deadline=None)

hashes32 = st.binary(min_size=32, max_size=32)


def entries(count: int, seed: bytes) -> list[bytes]:
    return [seed + i.to_bytes(4, "big") for i in range(count)]


@dataclass
class Inclusion:
    hashes: list[bytes]  # the whole log; the tree is its first `size` leaves
    size: int
    index: int
    proof: list[bytes]
    root: bytes

    def verify(self, **changes: object) -> None:
        args = {
            "index": self.index,
            "size": self.size,
            "leaf_hash": self.hashes[self.index],
            "proof": self.proof,
            "root": self.root,
        }
        args.update(changes)
        verify_inclusion(**args)  # type: ignore[arg-type]


@dataclass
class Consistency:
    hashes: list[bytes]
    size1: int
    size2: int
    proof: list[bytes]
    root1: bytes
    root2: bytes

    def verify(self, **changes: object) -> None:
        args = {
            "size1": self.size1,
            "size2": self.size2,
            "root1": self.root1,
            "root2": self.root2,
            "proof": self.proof,
        }
        args.update(changes)
        verify_consistency(**args)  # type: ignore[arg-type]


@st.composite
def logs(draw: st.DrawFn, max_leaves: int = MAX_LEAVES) -> list[bytes]:
    count = draw(st.integers(1, max_leaves))
    seed = draw(st.binary(max_size=8))
    return [leaf_hash(entry) for entry in entries(count, seed)]


@st.composite
def inclusions(draw: st.DrawFn) -> Inclusion:
    hashes = draw(logs())
    size = draw(st.integers(1, len(hashes)))
    index = draw(st.integers(0, size - 1))
    tree = hashes[:size]
    return Inclusion(
        hashes, size, index, inclusion_proof_from_hashes(index, tree), root_from_leaf_hashes(tree)
    )


@st.composite
def consistencies(draw: st.DrawFn) -> Consistency:
    hashes = draw(logs())
    size2 = draw(st.integers(1, len(hashes)))
    size1 = draw(st.integers(1, size2))
    return Consistency(
        hashes,
        size1,
        size2,
        consistency_proof_from_hashes(size1, hashes[:size2]),
        root_from_leaf_hashes(hashes[:size1]),
        root_from_leaf_hashes(hashes[:size2]),
    )


def flip_bit(value: bytes, bit: int) -> bytes:
    bit %= len(value) * 8
    changed = bytearray(value)
    changed[bit // 8] ^= 1 << (bit % 8)
    return bytes(changed)


# Roots -------------------------------------------------------------------------------------


@FEW
@given(st.integers(1, MAX_LEAVES), st.binary(max_size=8))
def test_root_equals_the_reference_tree(count: int, seed: bytes) -> None:
    data = entries(count, seed)
    expected = reference.mth(data)
    assert root_hash(data) == expected
    assert root_from_leaf_hashes([leaf_hash(entry) for entry in data]) == expected


# Inclusion ---------------------------------------------------------------------------------


@MANY
@given(inclusions())
def test_inclusion_proof_verifies(case: Inclusion) -> None:
    case.verify()
    leaf = case.hashes[case.index]
    assert root_from_inclusion_proof(case.index, case.size, leaf, case.proof) == case.root


@MANY
@given(inclusions(), st.data())
def test_inclusion_proof_fails_for_any_other_leaf(case: Inclusion, data: st.DataObject) -> None:
    other = data.draw(st.one_of(st.sampled_from(case.hashes), hashes32))
    assume(other != case.hashes[case.index])
    with pytest.raises(VerificationError):
        case.verify(leaf_hash=other)


@MANY
@given(inclusions(), st.data())
def test_inclusion_proof_fails_for_any_other_index(case: Inclusion, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, case.size + 2).filter(lambda i: i != case.index))
    with pytest.raises(VerificationError):
        case.verify(index=index)


@MANY
@given(inclusions(), st.data())
def test_inclusion_proof_fails_for_any_other_size(case: Inclusion, data: st.DataObject) -> None:
    size = data.draw(st.integers(0, len(case.hashes)).filter(lambda s: s != case.size))
    with pytest.raises(VerificationError):
        case.verify(size=size, root=root_from_leaf_hashes(case.hashes[:size]))


@MANY
@given(inclusions(), st.integers(0, 255))
def test_inclusion_proof_fails_for_any_other_root(case: Inclusion, bit: int) -> None:
    with pytest.raises(VerificationError):
        case.verify(root=flip_bit(case.root, bit))


@MANY
@given(inclusions(), st.data())
def test_inclusion_proof_with_a_bit_flipped_fails(case: Inclusion, data: st.DataObject) -> None:
    assume(case.proof)
    at = data.draw(st.integers(0, len(case.proof) - 1))
    proof = list(case.proof)
    proof[at] = flip_bit(proof[at], data.draw(st.integers(0, 255)))
    with pytest.raises(VerificationError):
        case.verify(proof=proof)


@MANY
@given(inclusions(), st.data())
def test_inclusion_proof_with_an_element_dropped_fails(
    case: Inclusion, data: st.DataObject
) -> None:
    assume(case.proof)
    at = data.draw(st.integers(0, len(case.proof) - 1))
    with pytest.raises(VerificationError):
        case.verify(proof=case.proof[:at] + case.proof[at + 1 :])


@MANY
@given(inclusions(), st.data())
def test_inclusion_proof_with_an_element_added_fails(case: Inclusion, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(case.proof)))
    extra = data.draw(st.one_of(hashes32, st.sampled_from([case.root, case.hashes[case.index]])))
    with pytest.raises(VerificationError):
        case.verify(proof=[*case.proof[:at], extra, *case.proof[at:]])


# Consistency -------------------------------------------------------------------------------


@MANY
@given(consistencies())
def test_consistency_proof_verifies(case: Consistency) -> None:
    case.verify()


@MANY
@given(consistencies(), st.integers(0, 255))
def test_consistency_proof_fails_for_any_other_root1(case: Consistency, bit: int) -> None:
    with pytest.raises(VerificationError):
        case.verify(root1=flip_bit(case.root1, bit))


@MANY
@given(consistencies(), st.integers(0, 255))
def test_consistency_proof_fails_for_any_other_root2(case: Consistency, bit: int) -> None:
    with pytest.raises(VerificationError):
        case.verify(root2=flip_bit(case.root2, bit))


@MANY
@given(consistencies(), st.data())
def test_consistency_proof_fails_for_any_other_size1(
    case: Consistency, data: st.DataObject
) -> None:
    size1 = data.draw(st.integers(0, case.size2 + 2).filter(lambda s: s != case.size1))
    with pytest.raises(VerificationError):
        case.verify(size1=size1)
    if size1 <= len(case.hashes):
        with pytest.raises(VerificationError):
            case.verify(size1=size1, root1=root_from_leaf_hashes(case.hashes[:size1]))


@MANY
@given(consistencies(), st.data())
def test_consistency_proof_fails_for_any_other_size2(
    case: Consistency, data: st.DataObject
) -> None:
    size2 = data.draw(st.integers(0, len(case.hashes)).filter(lambda s: s != case.size2))
    with pytest.raises(VerificationError):
        case.verify(size2=size2, root2=root_from_leaf_hashes(case.hashes[:size2]))


@MANY
@given(consistencies(), st.data())
def test_consistency_proof_with_a_bit_flipped_fails(case: Consistency, data: st.DataObject) -> None:
    assume(case.proof)
    at = data.draw(st.integers(0, len(case.proof) - 1))
    proof = list(case.proof)
    proof[at] = flip_bit(proof[at], data.draw(st.integers(0, 255)))
    with pytest.raises(VerificationError):
        case.verify(proof=proof)


@MANY
@given(consistencies(), st.data())
def test_consistency_proof_with_an_element_dropped_fails(
    case: Consistency, data: st.DataObject
) -> None:
    assume(case.proof)
    at = data.draw(st.integers(0, len(case.proof) - 1))
    with pytest.raises(VerificationError):
        case.verify(proof=case.proof[:at] + case.proof[at + 1 :])


@MANY
@given(consistencies(), st.data())
def test_consistency_proof_with_an_element_added_fails(
    case: Consistency, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(case.proof)))
    extra = data.draw(st.one_of(hashes32, st.sampled_from([case.root1, case.root2])))
    with pytest.raises(VerificationError):
        case.verify(proof=[*case.proof[:at], extra, *case.proof[at:]])


# Provers against the reference -------------------------------------------------------------


@MANY
@given(st.integers(1, 200), st.binary(max_size=8), st.data())
def test_inclusion_proof_equals_the_reference(count: int, seed: bytes, data: st.DataObject) -> None:
    leaves = entries(count, seed)
    index = data.draw(st.integers(0, count - 1))
    assert inclusion_proof(index, leaves) == reference.path(index, leaves)


@MANY
@given(st.integers(1, 200), st.binary(max_size=8), st.data())
def test_consistency_proof_equals_the_reference(
    count: int, seed: bytes, data: st.DataObject
) -> None:
    leaves = entries(count, seed)
    size1 = data.draw(st.integers(1, count))
    assert consistency_proof(size1, leaves) == reference.proof(size1, leaves)


def test_proofs_equal_the_reference_at_every_position_up_to_40_leaves() -> None:
    for count in range(1, 41):
        leaves = entries(count, b"all")
        for index in range(count):
            assert inclusion_proof(index, leaves) == reference.path(index, leaves)
        for size1 in range(1, count + 1):
            assert consistency_proof(size1, leaves) == reference.proof(size1, leaves)
