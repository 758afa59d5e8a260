"""Properties of the bundle's byte-level rules (docs/BUNDLE_FORMAT.md §5, §6): event records and
their frames read back exactly and refuse every inconsistent shape; the batch inclusion proof
gives the reference tree's root for any size and any set of positions, holds the nodes of the
RFC 9162 audit path for one position, and fails for any other leaf or a node too few or too
many."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests import reference_merkle as reference
from verify import bundle_format as bf
from verify.errors import MalformedInput, VerificationError
from verify.merkle import inclusion_proof_from_hashes, leaf_hash

hashes32 = st.binary(min_size=32, max_size=32)


@st.composite
def records(draw: st.DrawFn) -> bf.EventRecord:
    status = draw(st.sampled_from(bf.STATUSES))
    produced = status == bf.PRODUCED
    return bf.EventRecord(
        position=draw(st.integers(0, 2**63 - 1)),
        leaf=draw(st.binary(max_size=200)),
        header=draw(st.binary(max_size=300)),
        status=status,
        salt=draw(hashes32) if produced else None,
        payload=draw(st.binary(max_size=300)) if produced else None,
        claim=draw(st.text(min_size=1, max_size=40)) if status == bf.PRIVILEGED else None,
    )


@given(records())
def test_a_record_reads_back_exactly_and_its_bytes_are_canonical(record: bf.EventRecord) -> None:
    data = bf.encode_record(record)
    assert bf.parse_record(data) == record
    assert bf.encode_record(bf.parse_record(data)) == data


@given(records(), st.sampled_from(["salt", "payload", "claim", "status"]))
def test_a_record_whose_status_and_contents_disagree_is_refused(
    record: bf.EventRecord, change: str
) -> None:
    if change == "salt":
        bad = record._replace(salt=None if record.salt else b"\x00" * 32)
    elif change == "payload":
        bad = record._replace(payload=None if record.payload is not None else b"x")
    elif change == "claim":
        bad = record._replace(claim=None if record.claim else "work product")
    else:
        bad = record._replace(status="withheld")
    with pytest.raises(MalformedInput):
        bf.parse_record(bf.encode_record(bad))


@given(st.lists(st.binary(max_size=100), max_size=20))
def test_frames_read_back_as_the_records_they_hold(items: list[bytes]) -> None:
    data = b"".join(bf.frame(item) for item in items)
    assert [raw for _, raw in bf.iter_frames(data)] == items


@given(st.lists(st.binary(min_size=1, max_size=50), min_size=1, max_size=10), st.data())
def test_a_cut_frame_is_malformed_not_misread(items: list[bytes], data: st.DataObject) -> None:
    whole = b"".join(bf.frame(item) for item in items)
    cut = data.draw(st.integers(1, len(whole) - 1))
    boundaries = {sum(4 + len(i) for i in items[:k]) for k in range(len(items) + 1)}
    assume(cut not in boundaries)
    with pytest.raises(MalformedInput):
        list(bf.iter_frames(whole[:cut]))


@st.composite
def trees(draw: st.DrawFn) -> tuple[list[bytes], list[int]]:
    size = draw(st.integers(1, 130))
    entries = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(size)]
    positions = sorted(draw(st.sets(st.integers(0, size - 1), min_size=1, max_size=size)))
    return entries, positions


@settings(max_examples=200)
@given(trees())
def test_the_batch_proof_gives_the_reference_root(tree: tuple[list[bytes], list[int]]) -> None:
    entries, positions = tree
    hashes = [leaf_hash(e) for e in entries]
    proof = bf.batch_proof(hashes, positions)
    known = {p: hashes[p] for p in positions}
    assert bf.root_from_batch(len(hashes), known, proof) == reference.mth(entries)


@given(st.integers(1, 130), st.data())
def test_for_one_position_the_batch_proof_holds_the_rfc9162_audit_path(
    size: int, data: st.DataObject
) -> None:
    position = data.draw(st.integers(0, size - 1))
    hashes = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    batch = bf.batch_proof(hashes, [position])
    assert sorted(batch) == sorted(inclusion_proof_from_hashes(position, hashes))


@settings(max_examples=200)
@given(trees(), st.data())
def test_the_batch_proof_fails_for_any_other_leaf_or_any_node_more_or_less(
    tree: tuple[list[bytes], list[int]], data: st.DataObject
) -> None:
    entries, positions = tree
    hashes = [leaf_hash(e) for e in entries]
    proof = bf.batch_proof(hashes, positions)
    root = reference.mth(entries)
    known = {p: hashes[p] for p in positions}
    changed = dict(known)
    victim = data.draw(st.sampled_from(positions))
    changed[victim] = leaf_hash(b"another leaf")
    assert bf.root_from_batch(len(hashes), changed, proof) != root
    with pytest.raises(VerificationError):
        bf.root_from_batch(len(hashes), known, [*proof, b"\x00" * 32])
    if proof:
        cut = data.draw(st.integers(0, len(proof) - 1))
        shorter = proof[:cut] + proof[cut + 1 :]
        with pytest.raises(VerificationError):
            bf.root_from_batch(len(hashes), known, shorter)
