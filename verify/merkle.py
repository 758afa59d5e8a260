"""RFC 9162 §2.1 Merkle tree hashing (provisional; replaced by the full module)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from verify.errors import MalformedInput, ProofInvalid

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def root_hash(leaves: Sequence[bytes]) -> bytes:
    return root_from_leaf_hashes([leaf_hash(x) for x in leaves])


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def inclusion_proof_from_hashes(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    if not 0 <= index < len(hashes):
        raise ValueError("index out of range")
    if len(hashes) == 1:
        return []
    k = _split(len(hashes))
    if index < k:
        return inclusion_proof_from_hashes(index, hashes[:k]) + [root_from_leaf_hashes(hashes[k:])]
    return inclusion_proof_from_hashes(index - k, hashes[k:]) + [root_from_leaf_hashes(hashes[:k])]


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash_: bytes, proof: Sequence[bytes]
) -> bytes:
    if not 0 <= index < size:
        raise MalformedInput(f"index {index} is outside tree of size {size}")
    fn, sn, r = index, size - 1, leaf_hash_
    for p in proof:
        if sn == 0:
            raise ProofInvalid("proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofInvalid("proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf_hash_: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    got = root_from_inclusion_proof(index, size, leaf_hash_, proof)
    if got != root:
        raise ProofInvalid(f"inclusion proof for leaf {index} in tree of size {size} fails")
