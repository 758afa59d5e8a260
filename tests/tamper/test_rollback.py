"""The rollback story (issue 16): a database superuser deletes the newest events and the
checkpoint over them, which both verifiers alone cannot tell from a store that never had them;
a checkpoint held outside the store, cosigned by a real ``chartledger witness serve`` process,
catches it, and the witness refuses the fork the insider then signs at the same size.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.cli import main as chartledger
from tests.support import append_charts, patient, set_env
from tests.tamper.conftest import CHECKPOINT, Attacker
from verify.witness import read_outside_checkpoint

APPENDED = 10  # events the practice appends after the first witnessed checkpoint
NEWER = CHECKPOINT + APPENDED
REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(attacker: Attacker, *args: str) -> tuple[int, str]:
    set_env(attacker.config, attacker.monkeypatch)
    attacker.capsys.readouterr()
    code = chartledger(list(args))
    out = attacker.capsys.readouterr()
    return code, out.out + out.err


class WitnessProcess:
    def __init__(self, home: Path, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        command = ["witness", "serve", "--home", str(home), "--host", "127.0.0.1"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", *command, "--port", str(port)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self.vkey = httpx.get(self.url + "/", timeout=1).text.strip()
                return
            except httpx.HTTPError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("the witness did not start") from None
                time.sleep(0.1)

    def latest(self, origin: str) -> bytes:
        reply = httpx.get(f"{self.url}/logs/{origin}", timeout=10)
        assert reply.status_code == 200, reply.text
        return reply.content

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def witness(attacker: Attacker, tmp_path: Path) -> Iterator[WitnessProcess]:
    home = tmp_path / "witness"
    name = "attorney.example/w"
    code, out = run(attacker, "witness", "init", "--home", str(home), "--name", name)
    assert code == 0, out
    code, log_key = run(attacker, "witness", "log-key")
    assert code == 0, log_key
    assert run(attacker, "witness", "follow", "--home", str(home), log_key.strip())[0] == 0
    process = WitnessProcess(home, free_port())
    try:
        yield process
    finally:
        process.stop()


def test_a_rollback_is_caught_against_the_witnessed_checkpoint(
    attacker: Attacker, witness: WitnessProcess, tmp_path: Path
) -> None:
    # The practice sends its checkpoints to the witness...
    assert run(attacker, "witness", "add", witness.url, witness.vkey)[0] == 0
    assert run(attacker, "witness", "push") == (0, "")
    # ...appends and checkpoints again, and that checkpoint is witnessed too.
    with attacker.ledger() as ledger:
        origin = ledger.origin
        append_charts(ledger, [patient() for _ in range(APPENDED)], events_per_chart=1)
        assert ledger.checkpointer.issue().size == NEWER
        # Sent on the practice's own thread once the checkpoint committed.
        deadline = time.monotonic() + 30
        while read_outside_checkpoint(witness.latest(origin)).checkpoint.size != NEWER:
            assert time.monotonic() < deadline, "the checkpoint was not sent to the witness"
            time.sleep(0.1)
    assert run(attacker, "witness", "push") == (0, "")  # nothing left to send
    held = tmp_path / "attorney-copy.txt"  # what the attorney fetched from the witness
    held.write_bytes(witness.latest(origin))
    assert read_outside_checkpoint(held.read_bytes()).checkpoint.size == NEWER
    earlier = tmp_path / "earlier.txt"
    code, text = run(attacker, "witness", "checkpoint-file", "--size", str(CHECKPOINT))
    assert code == 0 and "— attorney.example/w " in text
    earlier.write_text(text)
    pinned = ("--checkpoint", str(held), "--trusted-witness", witness.vkey)
    assert [v.code for v in attacker.both(*pinned)] == [0, 0], attacker.both(*pinned)

    # The superuser deletes the newest events, the checkpoint over them and its cosignature.
    for position in range(CHECKPOINT, NEWER):
        attacker.delete_event(position)
    attacker.execute("DELETE FROM ledger_checkpoints WHERE size > ?", (CHECKPOINT,))
    attacker.execute("DELETE FROM ledger_cosignatures WHERE size > ?", (CHECKPOINT,))

    # On their own, both verifiers find a valid store: nothing inside it shows what is gone.
    assert [v.code for v in attacker.both()] == [0, 0]
    # An older checkpoint held outside is still a prefix of what is left.
    assert [v.code for v in attacker.both("--checkpoint", str(earlier))] == [0, 0]
    # The witnessed newer one is not.
    for verdict in attacker.both(*pinned):
        assert verdict.code == 1, verdict.out
        assert verdict.fails_at(f"outside checkpoint at size {NEWER}", "rolled back"), verdict.out

    # The insider, holding the practice's key, fills the log up to the same size again and
    # signs a checkpoint over it: a fork the witness refuses.
    with attacker.ledger() as ledger:
        append_charts(ledger, [patient() for _ in range(APPENDED)], events_per_chart=1)
        fork = ledger.checkpointer.issue()
    witnessed = read_outside_checkpoint(held.read_bytes()).checkpoint
    assert fork.size == NEWER and fork.root != witnessed.root
    code, out = run(attacker, "witness", "push")
    assert code == 1 and "refused size 51: HTTP 409" in out, out
    assert read_outside_checkpoint(witness.latest(origin)).checkpoint.root == witnessed.root
    for verdict in attacker.both(*pinned):
        assert verdict.code == 1, verdict.out
        assert verdict.fails_at(f"outside checkpoint at size {NEWER}", "rewritten"), verdict.out
