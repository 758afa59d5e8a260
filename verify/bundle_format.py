"""The byte-level rules of an e-discovery bundle (docs/BUNDLE_FORMAT.md): file names, event
records and their framing, and the batch inclusion proof. The bundle writer
(``legal_hold.production``) and the verifier (``verify.bundle``) both use these, so there is one
definition of each rule.
"""

from __future__ import annotations

import bisect
import struct
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from verify.canonical import decode_fixed_map, pack_ordered
from verify.errors import MalformedInput, ProofInvalid
from verify.merkle import HASH_SIZE, node_hash, root_from_leaf_hashes

__all__ = [
    "EventRecord",
    "batch_proof",
    "encode_record",
    "frame",
    "iter_frames",
    "parse_record",
    "root_from_batch",
]

KIND = "chartledger-bundle"
FORMAT_VERSION = 2
MANIFEST = "manifest.msgpack"
SIGNATURE = "manifest.sig"
KEYS = "keys.msgpack"
CHECKPOINT = "checkpoint.note"
SINCE = "since.note"
EVENTS = "events.bin"
PROOFS = "proofs.msgpack"
NATIVES_DIR = "natives/"
UNSIGNED = (MANIFEST, SIGNATURE)  # the only entries the manifest does not list

PRODUCED, PRIVILEGED, OUT_OF_SCOPE, DISPOSED = "produced", "privileged", "out-of-scope", "disposed"
STATUSES = (PRODUCED, PRIVILEGED, OUT_OF_SCOPE, DISPOSED)
# Canonical key order: by encoded length, then bytes.
RECORD_KEYS = ("leaf", "salt", "claim", "header", "status", "payload", "position")
FRAME = struct.Struct(">I")
MAX_RECORD = 1 << 30


class EventRecord(NamedTuple):
    position: int
    leaf: bytes
    header: bytes
    status: str
    salt: bytes | None = None
    payload: bytes | None = None
    claim: str | None = None


def encode_record(record: EventRecord) -> bytes:
    # Built in RECORD_KEYS order, which is canonical, so no sorting walk is needed; the claim is
    # the only text a producer supplies, so it is checked to be valid UTF-8 by encoding it.
    if record.claim is not None:
        record.claim.encode("utf-8")
    return pack_ordered(
        {
            "leaf": record.leaf,
            "salt": record.salt,
            "claim": record.claim,
            "header": record.header,
            "status": record.status,
            "payload": record.payload,
            "position": record.position,
        }
    )


def parse_record(data: bytes) -> EventRecord:
    """Canonical record bytes → EventRecord, refusing any shape §5 of the format does not allow."""
    r = decode_fixed_map(data, RECORD_KEYS, "event record")
    position, status = r["position"], r["status"]
    if type(position) is not int or position < 0:
        raise MalformedInput("event record position must be a non-negative integer")
    if type(r["leaf"]) is not bytes or type(r["header"]) is not bytes:
        raise MalformedInput(f"event record {position}: leaf and header must be bytes")
    if status not in STATUSES or type(status) is not str:
        raise MalformedInput(f"event record {position}: unknown status {status!r}")
    salt, payload, claim = r["salt"], r["payload"], r["claim"]
    if status == PRODUCED:
        if type(salt) is not bytes or len(salt) != 32 or type(payload) is not bytes:
            raise MalformedInput(f"event record {position}: produced without salt and payload")
    elif salt is not None or payload is not None:
        raise MalformedInput(f"event record {position}: {status} but carries a payload")
    if status == PRIVILEGED:
        if type(claim) is not str or not claim:
            raise MalformedInput(f"event record {position}: privileged without a claim")
    elif claim is not None:
        raise MalformedInput(f"event record {position}: a claim on a {status} event")
    return EventRecord(position, r["leaf"], r["header"], status, salt, payload, claim)


def frame(record_bytes: bytes) -> bytes:
    """One record in events.bin: its length (4 bytes, big-endian), then its bytes."""
    return FRAME.pack(len(record_bytes)) + record_bytes


def iter_frames(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, record bytes) for each framed record; MalformedInput at a broken frame."""
    offset, end = 0, len(data)
    while offset < end:
        if end - offset < FRAME.size:
            raise MalformedInput(f"{EVENTS}: {end - offset} stray bytes at offset {offset}")
        (length,) = FRAME.unpack_from(data, offset)
        start = offset + FRAME.size
        if length > MAX_RECORD or start + length > end:
            raise MalformedInput(f"{EVENTS}: record at offset {offset} runs past the end")
        yield offset, data[start : start + length]
        offset = start + length


# --- the batch inclusion proof ------------------------------------------------------------


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def batch_proof(hashes: Sequence[bytes], positions: Sequence[int]) -> list[bytes]:
    """The roots of the largest RFC 9162 subtrees holding none of ``positions`` (sorted,
    distinct), in left-to-right order: with the leaf hashes at ``positions`` they give the root
    of the tree of ``len(hashes)`` leaves (docs/BUNDLE_FORMAT.md §6)."""
    size = len(hashes)
    if any(not 0 <= p < size for p in positions[:1] + positions[-1:]):
        raise ValueError(f"positions outside a tree of size {size}")
    proof: list[bytes] = []

    def walk(lo: int, hi: int) -> None:
        i = bisect.bisect_left(positions, lo)
        if i == len(positions) or positions[i] >= hi:
            proof.append(hashes[lo] if hi - lo == 1 else root_from_leaf_hashes(hashes[lo:hi]))
            return
        if hi - lo == 1:
            return
        mid = lo + _split(hi - lo)
        walk(lo, mid)
        walk(mid, hi)

    if size:
        walk(0, size)
    return proof


def root_from_batch(size: int, known: dict[int, bytes], proof: Sequence[Any]) -> bytes:
    """The root of a tree of ``size`` leaves from the leaf hashes ``known`` by position and a
    batch proof; ProofInvalid when the proof has too few or too many nodes."""
    positions = sorted(known)
    if not positions:
        raise ProofInvalid("a batch proof needs at least one known leaf")
    if positions[0] < 0 or positions[-1] >= size:
        raise ProofInvalid(f"position {positions[-1]} is outside the tree of size {size}")
    for i, node in enumerate(proof):
        if type(node) is not bytes or len(node) != HASH_SIZE:
            raise MalformedInput(f"batch proof node {i} is not a {HASH_SIZE}-byte hash")
    nodes = iter(proof)
    missing = object()

    def walk(lo: int, hi: int) -> bytes:
        i = bisect.bisect_left(positions, lo)
        if i == len(positions) or positions[i] >= hi:
            node = next(nodes, missing)
            if node is missing:
                raise ProofInvalid(f"batch proof has too few nodes for a tree of size {size}")
            return node  # type: ignore[return-value]
        if hi - lo == 1:
            return known[lo]
        mid = lo + _split(hi - lo)
        left = walk(lo, mid)
        return node_hash(left, walk(mid, hi))

    root = walk(0, size)
    if next(nodes, missing) is not missing:
        raise ProofInvalid(f"batch proof has more nodes than a tree of size {size} needs")
    return root
