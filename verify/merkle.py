"""RFC 9162 §2.1 Merkle tree hashing: roots, inclusion proofs and consistency proofs.

Two halves. The provers (``inclusion_proof``, ``consistency_proof`` and their ``*_from_hashes``
forms) read the whole list of leaves; asking them for a proof that cannot exist is a bug in the
caller, so they raise ``ValueError``. The verifiers follow transparency-dev/merkle
``proof/verify.go``: state the preconditions, check the proof's length before hashing anything,
recompute the root, compare. They return ``None`` or raise a ``VerificationError``:
``MalformedInput`` for arguments that cannot be a tree position or a hash, ``ProofInvalid`` for a
proof that does not reproduce its root.

An RFC 9162 proof binds a tree size only through the proof's shape: a proof may also verify
against the same root for another size whose proof has the same shape (an inclusion proof for
leaf 0 of 3 verifies as leaf 0 of 4). The root is what binds the contents, so take the size and
the root from the same signed checkpoint.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from verify.errors import MalformedInput, ProofInvalid

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
HASH_SIZE = 32

_sha256 = hashlib.sha256
_EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of one leaf entry, SHA-256(0x00 || data) (RFC 9162 §2.1.1)."""
    return _sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an inner node, SHA-256(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return _sha256(NODE_PREFIX + left + right).digest()


def root_hash(leaves: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash MTH(D[n]) of a list of leaf entries, the data itself (RFC 9162 §2.1.1).

    The root of the empty list is SHA-256 of the empty string.
    """
    return root_from_leaf_hashes([_sha256(LEAF_PREFIX + data).digest() for data in leaves])


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle Tree Hash of a list of leaf hashes (RFC 9162 §2.1.1).

    Built level by level, pairing neighbours and promoting an odd last node unchanged. That is
    the tree of RFC 9162's rule (split at the largest power of two smaller than n): the left
    part of every split is a perfect subtree, which pairing builds exactly, and the node left
    over at a level is the root of the ragged right edge, which joins the tree higher up.
    """
    if not hashes:
        return _EMPTY_ROOT
    level = hashes
    while len(level) > 1:
        # One iterator zipped with itself yields neighbours without copying the level.
        pairs = iter(level)
        upper = [_sha256(NODE_PREFIX + a + b).digest() for a, b in zip(pairs, pairs, strict=False)]
        if len(level) & 1:
            upper.append(level[-1])
        level = upper
    return level[0]


def inclusion_proof(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over leaf entries (RFC 9162 §2.1.3.1), lowest sibling first."""
    return inclusion_proof_from_hashes(index, [leaf_hash(data) for data in leaves])


def inclusion_proof_from_hashes(index: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) over leaf hashes (RFC 9162 §2.1.3.1), lowest sibling first.

    Walks the RFC's recursion from the top without recursing: each step keeps the part that
    holds the leaf and records the root of the other part, so all steps together hash each
    leaf once.
    """
    size = len(hashes)
    if not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(_subtree_root(hashes, mid, hi))
            hi = mid
        else:
            path.append(_subtree_root(hashes, lo, mid))
            lo = mid
    path.reverse()
    return path


def consistency_proof(size1: int, leaves: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, D[n]) over leaf entries (RFC 9162 §2.1.4.1), lowest node first."""
    return consistency_proof_from_hashes(size1, [leaf_hash(data) for data in leaves])


def consistency_proof_from_hashes(size1: int, hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(size1, D[n]) over leaf hashes (RFC 9162 §2.1.4.1), lowest node first.

    SUBPROOF walked from the top like ``inclusion_proof_from_hashes``. ``size1`` must be in
    1..n: a proof from the empty tree proves nothing, and verifiers refuse it.
    """
    size2 = len(hashes)
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    # SUBPROOF(m, D[lo:hi], whole): m counts from lo; `whole` is the RFC's b, true while the
    # old tree's root is a node the verifier already has.
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:
            proof.append(_subtree_root(hashes, mid, hi))
            hi = mid
        else:
            proof.append(_subtree_root(hashes, lo, mid))
            m -= mid - lo
            lo = mid
            whole = False
    if not whole:
        proof.append(_subtree_root(hashes, lo, hi))
    proof.reverse()
    return proof


def root_from_inclusion_proof(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes]
) -> bytes:
    """The root that an inclusion proof gives for the leaf hash at ``index`` (RFC 9162 §2.1.3.2).

    Requires 0 <= index < size. Raises ``MalformedInput`` for arguments of the wrong shape and
    ``ProofInvalid`` for a proof of the wrong length, before hashing anything.
    """
    _check_position("index", index)
    _check_position("tree size", size)
    if index >= size:
        raise MalformedInput(f"index {index} is beyond tree size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_proof(proof)
    inner, border = _decompose(index, size)
    _check_proof_size(proof, inner + border)
    return _chain_border_right(_chain_inner(leaf_hash, proof[:inner], index), proof[inner:])


def verify_inclusion(
    index: int, size: int, leaf_hash: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``proof`` shows the leaf hash at ``index`` in the tree of ``size`` and ``root``.

    RFC 9162 §2.1.3.2. Requires 0 <= index < size. Returns ``None`` or raises
    ``MalformedInput`` or ``ProofInvalid``.
    """
    _check_hash("root", root)
    got = root_from_inclusion_proof(index, size, leaf_hash, proof)
    if got != root:
        raise ProofInvalid(
            f"inclusion proof for leaf {index} in tree of size {size} gives root "
            f"{_short(got)}, expected {_short(root)}"
        )


def verify_consistency(
    size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``size1``, ``root1`` is a prefix of the tree of ``size2``, ``root2``.

    RFC 9162 §2.1.4.2. Requires 0 < size1 <= size2. Returns ``None`` or raises
    ``MalformedInput`` or ``ProofInvalid``.
    """
    _check_position("size1", size1)
    _check_position("size2", size2)
    if size1 > size2:
        raise MalformedInput(f"size1 {size1} is greater than size2 {size2}")
    if size1 == 0:
        # Every tree extends the empty one, so such a proof shows nothing; the conformance
        # vectors refuse it even between two empty trees.
        raise MalformedInput("consistency proof from an empty tree (size1 0) is meaningless")
    _check_proof(proof)
    if size1 == size2:
        _check_proof_size(proof, 0)
        # Nothing is hashed here, so the roots are compared as given: like transparency-dev, the
        # conformance vectors accept equal roots of any length for equal sizes.
        _check_bytes("root1", root1)
        _check_bytes("root2", root2)
        if root1 != root2:
            raise ProofInvalid(
                f"trees of the same size {size1} have roots {_short(root1)} and {_short(root2)}"
            )
        return
    _check_hash("root1", root1)
    _check_hash("root2", root2)

    # The proof is, in effect, the tail of an inclusion proof for the last perfect subtree of
    # the old tree, at level `shift`; its root is proof[0], unless that subtree is the whole
    # old tree, whose root the verifier already has.
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    start = 0 if size1 == 1 << shift else 1
    _check_proof_size(proof, start + inner + border)
    seed = proof[0] if start else root1
    path = proof[start:]
    mask = (size1 - 1) >> shift

    # Only the siblings to the left of the path were in the old tree.
    got1 = _chain_border_right(_chain_inner_right(seed, path[:inner], mask), path[inner:])
    if got1 != root1:
        raise ProofInvalid(
            f"consistency proof from size {size1} to {size2} gives root1 "
            f"{_short(got1)}, expected {_short(root1)}"
        )
    got2 = _chain_border_right(_chain_inner(seed, path[:inner], mask), path[inner:])
    if got2 != root2:
        raise ProofInvalid(
            f"consistency proof from size {size1} to {size2} gives root2 "
            f"{_short(got2)}, expected {_short(root2)}"
        )


def _split(n: int) -> int:
    """The largest power of two smaller than n, for n >= 2 (RFC 9162 §2.1.1's k)."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtree_root(hashes: Sequence[bytes], lo: int, hi: int) -> bytes:
    if hi - lo == 1:
        return hashes[lo]
    return root_from_leaf_hashes(hashes[lo:hi])


def _decompose(index: int, size: int) -> tuple[int, int]:
    """Lengths of the two parts of the inclusion proof for ``index`` in a tree of ``size``.

    Below the level where the paths to ``index`` and to the last leaf part ("inner"), a
    sibling may be on either side; above it ("border"), the path runs along the right edge
    and only left siblings exist, one for each set bit of what is left of ``index``.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        # A set bit: the path comes up from the right, so the sibling is on the left.
        seed = node_hash(sibling, seed) if (index >> i) & 1 else node_hash(seed, sibling)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    for i, sibling in enumerate(proof):
        if (index >> i) & 1:
            seed = node_hash(sibling, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    for sibling in proof:
        seed = node_hash(sibling, seed)
    return seed


def _check_position(name: str, value: object) -> None:
    # bool is an int subclass, but True is no tree size.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedInput(f"{name} is {type(value).__name__}, want an integer")
    if value < 0:
        raise MalformedInput(f"{name} {value} is negative")


def _check_bytes(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise MalformedInput(f"{name} is {type(value).__name__}, want {HASH_SIZE} bytes")


def _check_hash(name: str, value: object) -> None:
    if not isinstance(value, bytes):
        raise MalformedInput(f"{name} is {type(value).__name__}, want {HASH_SIZE} bytes")
    if len(value) != HASH_SIZE:
        raise MalformedInput(f"{name} is {len(value)} bytes, want {HASH_SIZE}")


def _check_proof(proof: object) -> None:
    # bytes and str are sequences too, but never a list of hashes.
    if not isinstance(proof, Sequence) or isinstance(proof, (bytes, bytearray, str)):
        raise MalformedInput(f"proof is {type(proof).__name__}, want a sequence of hashes")


def _check_proof_size(proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise ProofInvalid(f"wrong proof size {len(proof)}, want {want}")
    for i, sibling in enumerate(proof):
        _check_hash(f"proof[{i}]", sibling)


def _short(h: bytes) -> str:
    return h[:4].hex() + "…"
