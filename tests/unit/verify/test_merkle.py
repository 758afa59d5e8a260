"""RFC 9162 §2.1 Merkle hashing and proofs, by example. Messages are pinned."""

from __future__ import annotations

import hashlib

import pytest

from verify import merkle
from verify.errors import MalformedInput, ProofInvalid
from verify.merkle import (
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 test tree used by transparency-dev/merkle (testonly/constants.go).
LEAVES = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    bytes(range(0x50, 0x58)),
    bytes(range(0x60, 0x70)),
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
HASHES = [leaf_hash(data) for data in LEAVES]
ROOT8 = bytes.fromhex(ROOTS[8])
ROOT6 = bytes.fromhex(ROOTS[6])
ZERO = bytes(32)


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(ZERO, ZERO) == hashlib.sha256(b"\x01" + ZERO + ZERO).digest()
    assert merkle.LEAF_PREFIX == b"\x00"
    assert merkle.NODE_PREFIX == b"\x01"
    assert merkle.HASH_SIZE == 32


@pytest.mark.parametrize("size", range(9))
def test_roots_of_the_rfc6962_test_tree_are_the_published_ones(size: int) -> None:
    assert root_hash(LEAVES[:size]).hex() == ROOTS[size]
    assert root_from_leaf_hashes(HASHES[:size]).hex() == ROOTS[size]


def test_root_of_the_empty_tree_is_the_hash_of_the_empty_string() -> None:
    assert root_hash([]) == hashlib.sha256(b"").digest()
    assert root_from_leaf_hashes([]) == hashlib.sha256(b"").digest()


def test_odd_last_node_is_promoted_unchanged() -> None:
    a, b, c = HASHES[:3]
    assert root_from_leaf_hashes([a, b, c]) == node_hash(node_hash(a, b), c)


def test_inclusion_proof_of_leaf_5_of_8_lists_siblings_from_the_bottom() -> None:
    h = HASHES
    assert inclusion_proof(5, LEAVES) == [
        h[4],
        node_hash(h[6], h[7]),
        node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3])),
    ]
    assert inclusion_proof_from_hashes(5, HASHES) == inclusion_proof(5, LEAVES)


def test_consistency_proof_from_6_to_8_follows_rfc9162() -> None:
    h = HASHES
    # RFC 9162 §2.1.4.3: PROOF(6, D[8]) = [k, l, m] where m = MTH(D[0:4]).
    assert consistency_proof(6, LEAVES) == [
        node_hash(h[4], h[5]),
        node_hash(h[6], h[7]),
        node_hash(node_hash(h[0], h[1]), node_hash(h[2], h[3])),
    ]
    assert consistency_proof_from_hashes(6, HASHES) == consistency_proof(6, LEAVES)


def test_consistency_proof_to_the_same_size_is_empty() -> None:
    assert consistency_proof(8, LEAVES) == []


def test_every_leaf_of_the_test_tree_verifies() -> None:
    for index in range(8):
        proof = inclusion_proof(index, LEAVES)
        verify_inclusion(index, 8, HASHES[index], proof, ROOT8)
        assert root_from_inclusion_proof(index, 8, HASHES[index], proof) == ROOT8


def test_every_prefix_of_the_test_tree_is_consistent_with_it() -> None:
    for size1 in range(1, 9):
        proof = consistency_proof(size1, LEAVES)
        verify_consistency(size1, 8, bytes.fromhex(ROOTS[size1]), ROOT8, proof)


def test_prover_refuses_a_leaf_outside_the_tree() -> None:
    with pytest.raises(ValueError, match="no leaf 8 in a tree of size 8"):
        inclusion_proof(8, LEAVES)
    with pytest.raises(ValueError, match="no leaf -1 in a tree of size 8"):
        inclusion_proof_from_hashes(-1, HASHES)


@pytest.mark.parametrize("size1", [0, 9])
def test_prover_refuses_a_consistency_proof_that_cannot_exist(size1: int) -> None:
    with pytest.raises(ValueError, match=f"no consistency proof from size {size1} to size 8"):
        consistency_proof(size1, LEAVES)


def test_wrong_root_names_the_leaf_the_size_and_both_roots() -> None:
    proof = inclusion_proof(5, LEAVES)
    with pytest.raises(
        ProofInvalid,
        match=r"^inclusion proof for leaf 5 in tree of size 8 "
        r"gives root 5dc9da79…, expected 00000000…$",
    ):
        verify_inclusion(5, 8, HASHES[5], proof, ZERO)


def test_wrong_leaf_is_rejected() -> None:
    proof = inclusion_proof(5, LEAVES)
    with pytest.raises(ProofInvalid, match=r"gives root [0-9a-f]{8}…, expected 5dc9da79…"):
        verify_inclusion(5, 8, HASHES[4], proof, ROOT8)


def test_proof_of_wrong_length_is_rejected_before_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_hashing(left: bytes, right: bytes) -> bytes:
        raise AssertionError("hashed before checking the proof's length")

    included = inclusion_proof(5, LEAVES)
    consistent = consistency_proof(6, LEAVES)
    monkeypatch.setattr(merkle, "node_hash", no_hashing)
    with pytest.raises(ProofInvalid, match=r"^wrong proof size 4, want 3$"):
        verify_inclusion(5, 8, HASHES[5], [*included, ZERO], ROOT8)
    with pytest.raises(ProofInvalid, match=r"^wrong proof size 2, want 3$"):
        verify_consistency(6, 8, ROOT6, ROOT8, consistent[1:])


def test_proof_length_is_checked_before_its_hashes() -> None:
    with pytest.raises(ProofInvalid, match="wrong proof size 1, want 3"):
        verify_inclusion(5, 8, HASHES[5], [b"short"], ROOT8)


@pytest.mark.parametrize(
    ("leaf", "message"),
    [
        (ZERO[:31], r"^leaf hash is 31 bytes, want 32$"),
        (ZERO + b"\x00", r"^leaf hash is 33 bytes, want 32$"),
        (b"", r"^leaf hash is 0 bytes, want 32$"),
    ],
)
def test_hash_of_wrong_length_is_malformed(leaf: bytes, message: str) -> None:
    with pytest.raises(MalformedInput, match=message):
        verify_inclusion(0, 1, leaf, [], ROOT8)


def test_hash_that_is_not_bytes_is_malformed() -> None:
    with pytest.raises(MalformedInput, match=r"^leaf hash is str, want 32 bytes$"):
        verify_inclusion(0, 1, HASHES[0].hex(), [], HASHES[0])  # type: ignore[arg-type]
    with pytest.raises(MalformedInput, match=r"^root is bytearray, want 32 bytes$"):
        verify_inclusion(0, 1, HASHES[0], [], bytearray(HASHES[0]))  # type: ignore[arg-type]


def test_proof_element_of_wrong_length_is_malformed() -> None:
    proof = inclusion_proof(5, LEAVES)
    proof[1] = proof[1][:-1]
    with pytest.raises(MalformedInput, match=r"^proof\[1\] is 31 bytes, want 32$"):
        verify_inclusion(5, 8, HASHES[5], proof, ROOT8)


@pytest.mark.parametrize("proof", [None, b"", ZERO, "abc"])
def test_proof_that_is_not_a_list_of_hashes_is_malformed(proof: object) -> None:
    with pytest.raises(MalformedInput, match=r"^proof is \w+, want a sequence of hashes$"):
        verify_inclusion(0, 1, HASHES[0], proof, HASHES[0])  # type: ignore[arg-type]


def test_index_beyond_the_tree_is_malformed() -> None:
    with pytest.raises(MalformedInput, match=r"^index 8 is beyond tree size 8$"):
        verify_inclusion(8, 8, HASHES[0], [], ROOT8)


@pytest.mark.parametrize(
    ("index", "size", "message"),
    [
        (-1, 8, r"^index -1 is negative$"),
        (0, -8, r"^tree size -8 is negative$"),
        (True, 8, r"^index is bool, want an integer$"),
        (0, 8.0, r"^tree size is float, want an integer$"),
    ],
)
def test_position_that_is_not_a_natural_number_is_malformed(
    index: object, size: object, message: str
) -> None:
    with pytest.raises(MalformedInput, match=message):
        verify_inclusion(index, size, HASHES[0], [], ROOT8)  # type: ignore[arg-type]


def test_single_leaf_tree_has_the_leaf_hash_as_root_and_an_empty_proof() -> None:
    verify_inclusion(0, 1, HASHES[3], [], HASHES[3])
    with pytest.raises(ProofInvalid, match="wrong proof size 1, want 0"):
        verify_inclusion(0, 1, HASHES[3], [HASHES[3]], HASHES[3])


def test_inclusion_proof_binds_the_size_only_through_its_shape() -> None:
    # Leaf 0 has the same proof shape in trees of 3 and 4 leaves, so RFC 9162 §2.1.3.2 accepts
    # the size-3 proof and root for size 4: the checkpoint, not the proof, pairs size and root.
    proof = inclusion_proof(0, LEAVES[:3])
    root3 = bytes.fromhex(ROOTS[3])
    verify_inclusion(0, 4, HASHES[0], proof, root3)
    with pytest.raises(ProofInvalid, match="wrong proof size 2, want 3"):
        verify_inclusion(0, 5, HASHES[0], proof, root3)


def test_consistency_names_the_sizes_and_the_root_that_differs() -> None:
    proof = consistency_proof(6, LEAVES)
    with pytest.raises(
        ProofInvalid,
        match=r"^consistency proof from size 6 to 8 gives root1 76e67dad…, expected 00000000…$",
    ):
        verify_consistency(6, 8, ZERO, ROOT8, proof)
    with pytest.raises(
        ProofInvalid,
        match=r"^consistency proof from size 6 to 8 gives root2 5dc9da79…, expected 00000000…$",
    ):
        verify_consistency(6, 8, ROOT6, ZERO, proof)


def test_consistency_from_a_power_of_two_uses_the_old_root_as_its_seed() -> None:
    root4 = bytes.fromhex(ROOTS[4])
    proof = consistency_proof(4, LEAVES)
    assert proof == [root_from_leaf_hashes(HASHES[4:])]
    verify_consistency(4, 8, root4, ROOT8, proof)


def test_size1_greater_than_size2_is_malformed() -> None:
    with pytest.raises(MalformedInput, match=r"^size1 9 is greater than size2 8$"):
        verify_consistency(9, 8, ROOT8, ROOT8, [])


@pytest.mark.parametrize("size2", [0, 1, 8])
def test_consistency_from_the_empty_tree_is_refused(size2: int) -> None:
    empty = hashlib.sha256(b"").digest()
    with pytest.raises(
        MalformedInput, match=r"^consistency proof from an empty tree \(size1 0\) is meaningless$"
    ):
        verify_consistency(0, size2, empty, empty, [])


def test_equal_sizes_need_an_empty_proof_and_equal_roots() -> None:
    verify_consistency(8, 8, ROOT8, ROOT8, [])
    with pytest.raises(ProofInvalid, match=r"^wrong proof size 1, want 0$"):
        verify_consistency(8, 8, ROOT8, ROOT8, [ROOT8])
    with pytest.raises(
        ProofInvalid, match=r"^trees of the same size 8 have roots 5dc9da79… and 00000000…$"
    ):
        verify_consistency(8, 8, ROOT8, ZERO, [])


def test_empty_consistency_proof_between_different_sizes_is_rejected() -> None:
    with pytest.raises(ProofInvalid, match=r"^wrong proof size 0, want 3$"):
        verify_consistency(6, 8, ROOT6, ROOT8, [])


def test_consistency_root_of_wrong_length_is_malformed() -> None:
    proof = consistency_proof(6, LEAVES)
    with pytest.raises(MalformedInput, match=r"^root2 is 9 bytes, want 32$"):
        verify_consistency(6, 8, ROOT6, ROOT8[:9], proof)
