"""Subject completeness proofs (docs/LEDGER_FORMAT.md §7): every leaf of one subject up to a
checkpoint, proven included, and proven to be all of them by the subject's head and back-links."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from verify.errors import ChainBroken, MalformedInput, ProofInvalid
from verify.merkle import leaf_hash, verify_inclusion
from verify.records import head_bytes, parse_leaf

__all__ = ["CompletenessProof", "ProvenLeaf", "verify_completeness"]


class ProvenLeaf(NamedTuple):
    position: int
    leaf: bytes
    proof: Sequence[bytes]


class CompletenessProof(NamedTuple):
    subject: str
    seq: int  # the subject's count at the checkpoint
    last_position: int
    head_index: int  # index of the head in the subject-heads tree
    heads_size: int  # number of subjects in that tree
    head_proof: Sequence[bytes]
    leaves: Sequence[ProvenLeaf]


def verify_completeness(
    proof: CompletenessProof, size: int, root: bytes, subjects_root: bytes
) -> list[int]:
    """Return the subject's positions, oldest first, if the proof shows all of them; else raise.

    ``size``, ``root`` and ``subjects_root`` come from a checkpoint whose signature the caller
    has already checked.
    """
    subject = proof.subject
    # (1) The head is the subject's entry in the signed subject-heads tree.
    head = leaf_hash(head_bytes(subject, proof.seq, proof.last_position))
    try:
        verify_inclusion(proof.head_index, proof.heads_size, head, proof.head_proof, subjects_root)
    except ProofInvalid as e:
        raise ProofInvalid(f"{subject}: head [{proof.seq}, {proof.last_position}]: {e}") from None
    if not 0 <= proof.last_position < size:
        raise ProofInvalid(f"{subject}: head position {proof.last_position} is outside size {size}")
    # (2) Every listed leaf is in the signed tree.
    by_position: dict[int, bytes] = {}
    for item in proof.leaves:
        if item.position in by_position:
            raise MalformedInput(f"{subject}: position {item.position} is listed twice")
        try:
            verify_inclusion(item.position, size, leaf_hash(item.leaf), item.proof, root)
        except ProofInvalid as e:
            raise ProofInvalid(f"{subject}: leaf at position {item.position}: {e}") from None
        by_position[item.position] = item.leaf
    # (3) Walk back from the head: each leaf names the subject's previous leaf.
    walked: list[int] = []
    position: int | None = proof.last_position
    seq = proof.seq
    while position is not None:
        leaf = by_position.get(position)
        if leaf is None:
            raise ChainBroken(
                f"{subject}: leaf #{seq} at position {position} is missing from the proof"
            )
        link = next((lk for lk in parse_leaf(leaf).links if lk[0] == subject), None)
        if link is None or link[1] != seq:
            raise ChainBroken(
                f"{subject}: leaf at position {position} carries {link}, expected #{seq}"
            )
        walked.append(position)
        prev = link[2]
        if prev is not None and prev >= position:
            raise ChainBroken(f"{subject}: leaf at position {position} links forward to {prev}")
        if (prev is None) != (seq == 1):
            raise ChainBroken(f"{subject}: chain ends at #{seq}, expected to end at #1")
        position, seq = prev, seq - 1
    extra = set(by_position) - set(walked)
    if extra:
        raise ChainBroken(f"{subject}: positions {sorted(extra)} are not on the subject's chain")
    return list(reversed(walked))
