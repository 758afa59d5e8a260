"""A real ledger on SQLite, driven by hypothesis: append, checkpoint, rotate the signing key.

After every step: each new checkpoint is consistent with the one before it, is signed by the key
the key history says was in force at its size, and carries the roots recomputed from the stored
leaves (the subject-heads root from this test's own model of who was appended where); and the
independent store verifier finds nothing wrong with the SQLite file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from uuid import UUID

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.practice import Practice
from events.config import StoreConfig
from events.ledger import Ledger, create_practice_files, record_genesis_key
from events.log import completeness_proof, leaf_hashes, tree_size
from events.rotation import rotate_signing_key
from tests.support import Chart, patient, user
from verify.chain import verify_completeness
from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
from verify.keyhistory import key_for_size
from verify.merkle import (
    consistency_proof_from_hashes,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
)
from verify.records import head_bytes
from verify.store import check_store, open_store

POOL_SIZE = 4
MAX_ROTATIONS = 2


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="chartledger-sm-"))
        self.config = StoreConfig(home=self.tmp / "home")
        self.practice, signing_key = create_practice_files(self.config, "State Machine Practice")
        # Only explicit checkpoints: neither the event count nor the clock may issue one.
        self.ledger = Ledger(self.config, every_events=10**9, every_seconds=10**9)
        record_genesis_key(self.ledger, signing_key)
        self.subjects = [patient() if i % 2 else user() for i in range(POOL_SIZE)]
        self.charts: dict[str, Chart] = {}
        self.size = 0  # the model: how many leaves the log has
        self.positions: dict[str, list[int]] = {}  # and where each subject's leaves are
        self.rotations = 0
        self.checkpoints: list[UnverifiedCheckpoint] = []  # as issued, oldest first
        self.checked = 0  # how many of them the invariant has checked

    def teardown(self) -> None:
        self.ledger.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- rules ----------------------------------------------------------------------------------

    @initialize()
    def init_like_the_cli(self) -> None:
        # What `chartledger init` does after the genesis key: the Practice event, a checkpoint.
        practice_id = UUID(self.practice["practice_id"])
        self.ledger.save(Practice(practice_id=practice_id, name=self.practice["name"]))
        self.size = 1
        self.checkpoint()

    @rule(which=st.integers(0, POOL_SIZE - 1), count=st.integers(1, 5))
    def append(self, which: int, count: int) -> None:
        subject = self.subjects[which]
        chart = self.charts.get(subject)
        notes = count
        if chart is None:
            chart = self.charts[subject] = Chart(subjects=(subject,), text="opened")
            notes -= 1
        for i in range(notes):
            chart.note(subjects=(subject,), text=f"note {i}")
        self.ledger.save(chart)
        self.positions.setdefault(subject, []).extend(range(self.size, self.size + count))
        self.size += count

    @rule()
    def checkpoint(self) -> None:
        issued = self.ledger.checkpointer.issue()
        assert issued.size == self.size
        self.checkpoints.append(issued)

    @precondition(lambda self: self.rotations < MAX_ROTATIONS)
    @rule()
    def rotate(self) -> None:
        before = self.ledger.key_history()
        statement = rotate_signing_key(self.ledger)
        self.rotations += 1
        # The rotation is itself the newest event of the log (§9): at position from_size - 1.
        assert statement.from_size > self.size
        self.size = statement.from_size
        with self.ledger.db.read() as c:
            assert tree_size(c) == self.size
        assert statement.seq == len(before)
        assert statement.previous == before[-1].key_id

    @precondition(lambda self: self.checkpoints and self.checkpoints[-1].size > 0)
    @rule(which=st.integers(0, POOL_SIZE - 1))
    def prove_subject(self, which: int) -> None:
        checkpoint = self.checkpoints[-1]
        subject = self.subjects[which]
        expected = [p for p in self.positions.get(subject, []) if p < checkpoint.size]
        if not expected:
            return
        with self.ledger.db.read() as c:
            proof = completeness_proof(c, subject, checkpoint.size)
        got = verify_completeness(proof, checkpoint.size, checkpoint.root, checkpoint.subjects_root)
        assert got == expected

    # --- invariants -------------------------------------------------------------------------------

    @invariant()
    def each_new_checkpoint_extends_the_last_and_is_signed_and_rooted(self) -> None:
        history = self.ledger.key_history()
        while self.checked < len(self.checkpoints):
            checkpoint = self.checkpoints[self.checked]
            size = checkpoint.size
            with self.ledger.db.read() as c:
                hashes = leaf_hashes(c, size)
                c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))
                row = c.fetchone()
            assert row is not None and parse_note(bytes(row[0])) == checkpoint
            assert len(hashes) == size
            assert checkpoint.origin == self.ledger.origin
            # Signed by the key in force at its size.
            key = key_for_size(history, size)
            assert checkpoint.key_id == key.key_id
            verify_checkpoint(checkpoint, key.public_key)
            # Roots recomputed from the stored leaves, and the heads from the model.
            assert checkpoint.root == root_from_leaf_hashes(hashes)
            heads = sorted(
                (
                    (s, len([p for p in ps if p < size]), max(p for p in ps if p < size))
                    for s, ps in self.positions.items()
                    if any(p < size for p in ps)
                ),
                key=lambda h: h[0].encode(),
            )
            assert checkpoint.subjects_root == root_from_leaf_hashes(
                [leaf_hash(head_bytes(*h)) for h in heads]
            )
            # Consistent with the checkpoint before it (a proof from the empty tree is meaningless).
            if self.checked > 0:
                previous = self.checkpoints[self.checked - 1]
                if previous.size > 0:
                    proof = consistency_proof_from_hashes(previous.size, hashes)
                    verify_consistency(previous.size, size, previous.root, checkpoint.root, proof)
                else:
                    assert previous.root == root_from_leaf_hashes([])
            self.checked += 1

    @invariant()
    def the_store_verifier_finds_no_problem(self) -> None:
        store = open_store(str(self.config.sqlite_path))
        try:
            report = check_store(store)
        finally:
            store.close()
        assert report.problems == [], "\n".join(p.line() for p in report.problems)
        assert report.size == self.size
        assert report.events == self.size
        assert report.checkpoints == len({c.size for c in self.checkpoints})
        assert report.keys == 1 + self.rotations


LedgerMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_ledger_appends_checkpoints_and_rotations_keep_every_invariant = LedgerMachine.TestCase
