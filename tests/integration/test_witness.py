"""The witness (C2SP tlog-witness) against a real practice's checkpoints, over its HTTP app.

The practice side is the real one (events/witnessing.py: request, consistency proof, keeping
the cosignature); the witness is the app ``chartledger witness serve`` runs, with its own key and
SQLite state. Attacks sign with the practice's real key, as an insider holding it would.
"""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.witness.app import app_from_home
from api.witness.home import WitnessHome
from api.witness.state import WitnessState
from events.ledger import Ledger
from events.log import iter_leaves
from events.rotation import rotate_signing_key
from events.tiles import TileReader, consistency_proof
from events.witnessing import (
    WitnessConfig,
    WitnessingError,
    add_witness,
    consistency_lines,
    cosigned_note,
    cosigned_size,
    latest_note,
    push_to_witness,
)
from tests.support import append_charts, patient
from verify.checkpoint import format_body, format_note, parse_note
from verify.cosignature import (
    COSIGNATURE_TYPE,
    NOTE_ED25519_TYPE,
    format_vkey,
    parse_vkey,
    verify_cosignature,
)
from verify.merkle import consistency_proof_from_hashes, leaf_hash
from verify.witness import check_witnessed_checkpoint


class Setup:
    def __init__(self, ledger: Ledger, home: WitnessHome) -> None:
        self.ledger = ledger
        self.home = home
        self.vkey = parse_vkey(home.vkey())
        self.client: TestClient | None = None

    def log_vkey(self, index: int = -1) -> str:
        key = self.ledger.key_history()[index]
        return format_vkey(self.ledger.origin, NOTE_ED25519_TYPE, key.public_key)

    def start(self) -> TestClient:
        # The app reads its configuration when built, as `witness serve` does when it starts.
        if self.client is not None:
            self.client.close()
        self.client = TestClient(app_from_home(self.home))
        return self.client

    def push(self) -> int | None:
        assert self.client is not None
        return push_to_witness(self.ledger.db, WitnessConfig("", self.vkey), self.client)

    def post(self, body: bytes) -> tuple[int, str, str]:
        assert self.client is not None
        reply = self.client.post("/add-checkpoint", content=body)
        return reply.status_code, reply.text, reply.headers.get("content-type", "")

    def grow(self, events: int = 3) -> bytes:
        append_charts(self.ledger, [patient() for _ in range(events)], events_per_chart=1)
        self.ledger.checkpointer.issue()
        note = latest_note(self.ledger.db)
        assert note is not None
        return note


@pytest.fixture
def setup(ledger: Ledger, tmp_path: Path) -> Iterator[Setup]:
    home = WitnessHome(tmp_path / "witness")
    home.create("witness.example/w1")
    made = Setup(ledger, home)
    home.follow(made.log_vkey())
    made.start()
    yield made
    assert made.client is not None
    made.client.close()


def request(old: int, proof: list[str], note: bytes) -> bytes:
    return ("\n".join([f"old {old}", *proof]) + "\n\n").encode() + note


def forged(ledger: Ledger, size: int, root: bytes) -> bytes:
    """A checkpoint the practice's own key signs over a tree it never had (an insider's fork)."""
    key = ledger.signing_key(ledger.key_history()[-1].key_id)
    body = format_body(
        ledger.origin, size, root, b"\x07" * 32, "2026-01-01T00:00:00.000000Z", key.key_id
    )
    return format_note(body, ledger.origin, key.note_key_hash(ledger.origin), key.sign(body))


def test_cosigns_the_first_checkpoint_and_each_consistent_extension(setup: Setup) -> None:
    first = setup.grow()
    assert setup.push() == parse_note(first).size
    second = setup.grow()
    assert setup.push() == parse_note(second).size
    assert setup.push() is None  # nothing new
    kept = cosigned_note(setup.ledger.db, parse_note(second).size)
    checkpoint, times = check_witnessed_checkpoint(
        kept, setup.ledger.key_history()[-1].public_key, [setup.vkey]
    )
    assert checkpoint.size == parse_note(second).size and set(times) == {"witness.example/w1"}


def test_a_stale_old_size_is_409_with_the_size_it_holds(setup: Setup) -> None:
    note = setup.grow()
    assert setup.post(request(0, [], note))[0] == 200
    newer = setup.grow()
    status, body, kind = setup.post(request(0, [], newer))
    assert (status, body, kind.split(";")[0]) == (
        409,
        f"{parse_note(note).size}\n",
        "text/x.tlog.size",
    )


def test_a_fork_of_the_same_size_is_refused_and_kept_as_evidence(setup: Setup) -> None:
    note = setup.grow()
    checkpoint = parse_note(note)
    assert setup.post(request(0, [], note))[0] == 200
    fork = forged(setup.ledger, checkpoint.size, b"\x01" * 32)
    status, body, _ = setup.post(request(checkpoint.size, [], fork))
    assert status == 409 and "fork" in body
    state = WitnessState(setup.home.state_path)
    try:
        assert [reason for reason, _ in state.refusals(checkpoint.origin)] == [
            "fork: same size, different root hash"
        ]
        assert state.latest(checkpoint.origin).root == checkpoint.root
    finally:
        state.close()


def test_an_inconsistent_extension_is_refused(setup: Setup) -> None:
    note = setup.grow()
    old = parse_note(note).size
    assert setup.post(request(0, [], note))[0] == 200
    newer = parse_note(setup.grow())
    proof = consistency_lines(setup.ledger.db, old, newer.size)
    # The same proof, for a tree of that size with another root: not an extension of the old one.
    fork = forged(setup.ledger, newer.size, bytes(32))
    assert setup.post(request(old, proof, fork))[0] == 422
    # A proof with one hash changed, for the real checkpoint.
    broken = [base64.b64encode(bytes(32)).decode(), *proof[1:]]
    assert setup.post(request(old, broken, latest_note(setup.ledger.db) or b""))[0] == 422
    # The real one still passes: nothing was stored on refusal.
    assert setup.push() == newer.size


def test_bad_signatures_and_unknown_logs_are_refused(setup: Setup, tmp_path: Path) -> None:
    note = setup.grow()
    text = note.decode()
    body, _, line = text.partition("\n\n")
    name, _, blob = line.strip()[2:].partition(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    bad = f"{body}\n\n— {name} {base64.b64encode(bytes(raw)).decode()}\n".encode()
    assert setup.post(request(0, [], bad))[0] == 403
    other = note.replace(setup.ledger.origin.encode(), b"other.example/log")
    assert setup.post(request(0, [], other))[0] == 404
    assert setup.post(b"old x\n\n" + note)[0] == 400
    size = parse_note(note).size
    assert setup.post(request(size + 1, [], note))[0] == 400
    assert setup.post(request(0, [], note))[0] == 200  # the refusals left no state behind


def test_oversized_header_fields_and_bodies_are_refused_before_the_witness_reads_them(
    setup: Setup,
) -> None:
    assert setup.client is not None
    refused = setup.client.get("/", headers={"x-pad": "a" * 1_000_000})
    assert (refused.status_code, refused.json()["status"]) == (431, 431)
    note = setup.grow()
    huge = request(0, [], note) + b"\n" * (64 * 1024)
    assert setup.post(huge)[0] == 413
    assert setup.post(request(0, [], note))[0] == 200  # the refusals left no state behind


def test_a_rotated_log_is_followed_through_its_dual_signed_checkpoint(setup: Setup) -> None:
    setup.grow()
    setup.push()
    rotate_signing_key(setup.ledger)
    dual = setup.grow()
    checkpoint = parse_note(dual)
    assert len(checkpoint.signatures) == 2  # the new key, and the old one the witness knows
    assert setup.push() == checkpoint.size
    # Later checkpoints carry the new key only: the witness needs it from its operator.
    later = setup.grow()
    assert len(parse_note(later).signatures) == 1
    with pytest.raises(WitnessingError, match="HTTP 403"):
        setup.push()
    setup.home.follow(setup.log_vkey(-1))
    setup.start()
    assert setup.push() == parse_note(later).size


def test_the_witness_serves_the_latest_cosigned_checkpoint(setup: Setup) -> None:
    note = setup.grow()
    setup.push()
    assert setup.client is not None
    reply = setup.client.get(f"/logs/{setup.ledger.origin}")
    assert reply.status_code == 200
    body = note.split(b"\n\n")[0] + b"\n"
    line = reply.text.splitlines()[-1]
    verify_cosignature(body, line, setup.vkey)
    assert setup.client.get("/logs/nobody.example/x").status_code == 404


def test_an_unreachable_witness_never_holds_up_an_append(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"  # nothing listens once it is closed
    key = format_vkey("witness.example/w1", COSIGNATURE_TYPE, bytes(range(32)))
    add_witness(ledger.config.home, closed, key)
    busy = Ledger(ledger.config, every_events=1, every_seconds=10**9)
    try:
        with caplog.at_level(logging.WARNING, logger="chartledger.witnessing"):
            started = time.monotonic()
            append_charts(busy, [patient()], events_per_chart=1)  # a checkpoint falls due
            assert time.monotonic() - started < 2
            deadline = time.monotonic() + 20
            while "cannot be reached" not in caplog.text:
                assert time.monotonic() < deadline, "the failure was not logged"
                time.sleep(0.05)
    finally:
        busy.close()
    assert "witness.example/w1 cannot be reached" in caplog.text
    assert cosigned_size(ledger.db, "witness.example/w1") == 0


def test_the_proofs_sent_to_a_witness_are_read_from_a_few_tiles(setup: Setup) -> None:
    """Issue 22: the consistency proof the practice sends is the one RFC 9162 builds from every
    leaf, read from the stored tiles instead: at most two tiles a level (each tree's right
    edge), however long the log."""
    first = parse_note(setup.grow(300)).size
    assert setup.push() == first
    later = parse_note(setup.grow(500)).size
    with setup.ledger.db.read() as c:
        hashes = [leaf_hash(leaf) for leaf in iter_leaves(c, 0, later)]
        for old in (1, 2, 255, 256, 257, first, later - 1, later):
            reader = TileReader(c)
            expected = consistency_proof_from_hashes(old, hashes)
            assert consistency_proof(reader, old, later) == expected, old
            assert reader.reads <= 4, (old, reader.reads)
    sent = consistency_lines(setup.ledger.db, first, later)
    assert sent == [
        base64.b64encode(h).decode() for h in consistency_proof_from_hashes(first, hashes)
    ]
    assert setup.push() == later  # and the witness accepts it
