"""Subject completeness proofs (LEDGER_FORMAT.md §5, §7) hold for any log and break for any change.

The log is built in memory, straight from the spec and independently of events/: each event
concerns 0..3 subjects from a small pool; its leaf links each subject to the subject's previous
leaf (§5); the subject heads at a checkpoint size are recomputed from the event list (§7). Only
the byte layouts (``leaf_bytes``, ``head_bytes``) and the RFC 9162 provers come from verify/.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from verify.chain import CompletenessProof, ProvenLeaf, verify_completeness
from verify.errors import ChainBroken, ProofInvalid
from verify.merkle import inclusion_proof_from_hashes, leaf_hash, root_from_leaf_hashes
from verify.records import head_bytes, leaf_bytes

SETTINGS = settings(max_examples=100, deadline=None)

# "patient:aa" < "patient:b" by bytes but not by length; "patient:" < "user:".
POOL = ["patient:b", "patient:aa", "patient:c-1", "user:a", "user:0"]

event_lists = st.lists(
    st.lists(st.sampled_from(POOL), max_size=3, unique=True), min_size=1, max_size=40
)


@dataclass
class Log:
    events: list[list[str]]  # the subjects of each event, in log order
    leaves: list[bytes]
    hashes: list[bytes]

    @classmethod
    def build(cls, events: list[list[str]]) -> Log:
        last: dict[str, tuple[int, int]] = {}  # subject -> (seq, position)
        leaves = []
        for position, subjects in enumerate(events):
            links = []
            for subject in sorted(subjects, key=str.encode):
                seq, prev = last.get(subject, (0, None))
                links.append((subject, seq + 1, prev))  # prev is nil exactly when seq is 1
                last[subject] = (seq + 1, position)
            digest = hashlib.sha256(f"event {position}".encode()).digest()
            leaves.append(leaf_bytes(digest, links))
        return cls(events, leaves, [leaf_hash(leaf) for leaf in leaves])

    def positions(self, subject: str, size: int) -> list[int]:
        return [p for p, subjects in enumerate(self.events[:size]) if subject in subjects]

    def heads(self, size: int) -> list[tuple[str, int, int]]:
        """[subject, seq, position] of every subject's last leaf below ``size``, by UTF-8 bytes."""
        found = {}
        for subject in POOL:
            positions = self.positions(subject, size)
            if positions:
                found[subject] = (subject, len(positions), positions[-1])
        return [found[s] for s in sorted(found, key=str.encode)]

    def root(self, size: int) -> bytes:
        return root_from_leaf_hashes(self.hashes[:size])

    def subjects_root(self, size: int) -> bytes:
        return root_from_leaf_hashes([leaf_hash(head_bytes(*h)) for h in self.heads(size)])

    def proven(self, position: int, size: int) -> ProvenLeaf:
        proof = inclusion_proof_from_hashes(position, self.hashes[:size])
        return ProvenLeaf(position, self.leaves[position], proof)

    def proof(
        self,
        subject: str,
        size: int,
        *,
        head: tuple[str, int, int] | None = None,
        positions: list[int] | None = None,
    ) -> CompletenessProof:
        """The completeness proof; ``head`` replaces the subject's head in the heads tree."""
        heads = self.heads(size)
        index = next(i for i, h in enumerate(heads) if h[0] == subject)
        if head is not None:
            heads[index] = head
        _, seq, last = heads[index]
        head_hashes = [leaf_hash(head_bytes(*h)) for h in heads]
        positions = self.positions(subject, size) if positions is None else positions
        return CompletenessProof(
            subject=subject,
            seq=seq,
            last_position=last,
            head_index=index,
            heads_size=len(heads),
            head_proof=inclusion_proof_from_hashes(index, head_hashes),
            leaves=[self.proven(p, size) for p in positions],
        )

    def verify(self, proof: CompletenessProof, size: int) -> list[int]:
        return verify_completeness(proof, size, self.root(size), self.subjects_root(size))


@st.composite
def cases(draw: st.DrawFn, min_events: int = 1) -> tuple[Log, str, int]:
    """A log, a checkpoint size and a subject with at least ``min_events`` events below it."""
    log = Log.build(draw(event_lists))
    size = draw(st.integers(1, len(log.events)), label="size")
    subjects = [s for s in POOL if len(log.positions(s, size)) >= min_events]
    assume(subjects)
    return log, draw(st.sampled_from(subjects), label="subject"), size


@SETTINGS
@given(cases())
def test_a_completeness_proof_returns_exactly_the_subjects_positions(
    case: tuple[Log, str, int],
) -> None:
    log, subject, size = case
    positions = log.positions(subject, size)
    assert log.verify(log.proof(subject, size), size) == positions
    assert positions[-1] < size


@SETTINGS
@given(cases(), st.data())
def test_leaving_out_any_one_leaf_breaks_the_chain(
    case: tuple[Log, str, int], data: st.DataObject
) -> None:
    log, subject, size = case
    positions = log.positions(subject, size)
    i = data.draw(st.integers(0, len(positions) - 1), label="left out")
    fewer = positions[:i] + positions[i + 1 :]
    with pytest.raises(
        ChainBroken,
        match=rf"^{re.escape(subject)}: leaf #{i + 1} at position {positions[i]} "
        r"is missing from the proof$",
    ):
        log.verify(log.proof(subject, size, positions=fewer), size)


@SETTINGS
@given(cases(), st.data())
def test_adding_a_leaf_that_is_not_the_subjects_is_refused(
    case: tuple[Log, str, int], data: st.DataObject
) -> None:
    log, subject, size = case
    positions = log.positions(subject, size)
    others = [p for p in range(size) if p not in positions]
    assume(others)
    extra = data.draw(st.sampled_from(others), label="extra")
    with pytest.raises(
        ChainBroken,
        match=rf"^{re.escape(subject)}: positions \[{extra}\] are not on the subject's chain$",
    ):
        log.verify(log.proof(subject, size, positions=sorted([*positions, extra])), size)


@SETTINGS
@given(cases(min_events=2), st.booleans())
def test_a_stale_head_does_not_match_the_signed_subject_heads(
    case: tuple[Log, str, int], hide_last: bool
) -> None:
    # The head an older checkpoint had: one event fewer. With the last leaf hidden it is exactly
    # the proof that would hide the subject's newest event.
    log, subject, size = case
    positions = log.positions(subject, size)
    k = len(positions)
    stale = (subject, k - 1, positions[-2])
    proof = log.proof(
        subject, size, head=stale, positions=positions[:-1] if hide_last else positions
    )
    with pytest.raises(
        ProofInvalid,
        match=rf"^{re.escape(subject)}: head \[{k - 1}, {positions[-2]}\]: inclusion proof ",
    ):
        log.verify(proof, size)


@SETTINGS
@given(cases(), st.data())
def test_a_flipped_byte_in_any_leaf_breaks_its_inclusion_proof(
    case: tuple[Log, str, int], data: st.DataObject
) -> None:
    log, subject, size = case
    proof = log.proof(subject, size)
    which = data.draw(st.integers(0, len(proof.leaves) - 1), label="leaf")
    item = proof.leaves[which]
    offset = data.draw(st.integers(0, len(item.leaf) - 1), label="byte")
    mask = data.draw(st.integers(1, 255), label="mask")
    flipped = bytearray(item.leaf)
    flipped[offset] ^= mask
    leaves = list(proof.leaves)
    leaves[which] = item._replace(leaf=bytes(flipped))
    with pytest.raises(
        ProofInvalid,
        match=rf"^{re.escape(subject)}: leaf at position {item.position}: inclusion proof for "
        rf"leaf {item.position} in tree of size {size} gives root",
    ):
        log.verify(proof._replace(leaves=leaves), size)


@SETTINGS
@given(cases(), st.data())
def test_a_proof_checked_against_another_checkpoint_is_refused(
    case: tuple[Log, str, int], data: st.DataObject
) -> None:
    # Roots of another size of the same log: some later event or subject head differs.
    log, subject, size = case
    other = data.draw(st.integers(1, len(log.events)), label="other size")
    assume(log.heads(other) != log.heads(size) or log.root(other) != log.root(size))
    with pytest.raises(ProofInvalid, match=rf"^{re.escape(subject)}: (head|leaf at position) "):
        verify_completeness(
            log.proof(subject, size), size, log.root(other), log.subjects_root(other)
        )
