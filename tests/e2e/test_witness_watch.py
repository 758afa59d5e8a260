"""Issue 22: a witness that reads its consistency proofs from the log's tiles. ``chartledger
witness watch`` fetches the practice's newest checkpoint and the C2SP tiles it needs over HTTP,
builds the proof from the checkpoint it cosigned last, and cosigns only what that proof shows
to extend it (docs/WITNESS.md §3.4), on both stores. A log (or anyone between it and the
witness) that serves a tile other than the tree's is refused with the proof, and one that serves
a smaller tree than was cosigned (a rollback) is refused and kept as evidence."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as chartledger
from api.settings import Settings
from api.witness.home import WitnessHome
from api.witness.protocol import Witness
from api.witness.state import WitnessState
from api.witness.watch import watch_once
from events.ledger import Ledger
from tests.e2e.conftest import CHARTLEDGER, Practice, served
from tests.e2e.test_tiles_http import append, verified_checkpoint
from verify.cosignature import parse_vkey, split_signed_note, verify_cosignature

NAME = "witness.example/w1"


@dataclass(frozen=True)
class Watcher:
    home: WitnessHome
    witness: Witness
    log_vkey: str

    @property
    def origin(self) -> str:
        (origin,) = self.witness.logs
        return origin

    def size(self) -> int:
        return self.witness.state.latest(self.origin).size


@pytest.fixture
def watcher(
    practice: Practice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Iterator[Watcher]:
    """A witness following the practice's log, which has signed a checkpoint."""
    home = WitnessHome(tmp_path / "witness")
    home.create(NAME)
    ledger(practice).checkpointer.issue()
    capsys.readouterr()
    assert chartledger(["witness", "log-key"]) == 0
    log_vkey = capsys.readouterr().out.strip()
    home.follow(log_vkey)
    state = WitnessState(home.state_path)
    yield Watcher(home, Witness(home.name, home.key(), home.logs(), state), log_vkey)
    state.close()


def ledger(practice: Practice) -> Ledger:
    return practice.http.app.state.services.ledger  # type: ignore[attr-defined,no-any-return]


def published(practice: Practice) -> TestClient:
    settings = Settings(
        store=practice.settings.store,
        pbkdf2_iterations=practice.settings.pbkdf2_iterations,
        background=False,
        publish_log=True,
    )
    return TestClient(create_app(settings), raise_server_exceptions=False)


def lying(log: TestClient, change: Callable[[str, bytes], bytes]) -> httpx.Client:
    """A client whose replies from ``log`` pass through ``change`` (path, body) -> body: a log
    that lies, or whoever sits between it and the witness."""

    def handle(request: httpx.Request) -> httpx.Response:
        reply = log.get(request.url.path)
        return httpx.Response(reply.status_code, content=change(request.url.path, reply.content))

    return httpx.Client(transport=httpx.MockTransport(handle), base_url="http://log")


def test_a_watching_witness_cosigns_what_the_tiles_prove_and_nothing_else(
    practice: Practice, watcher: Watcher
) -> None:
    store, witness = ledger(practice), watcher.witness
    with published(practice) as log:
        first = watch_once(witness, log)
        assert first.answer.status == 200, first.answer
        assert (first.old_size, first.tiles_read) == (0, 0)  # the first one needs no proof
        first_note = witness.state.latest(watcher.origin).note
        assert first_note is not None
        body, _ = split_signed_note(first_note)
        verify_cosignature(body, first.answer.body.strip(), parse_vkey(watcher.home.vkey()))

        append(store, 700)
        store.checkpointer.issue()
        second = watch_once(witness, log)
        assert second.answer.status == 200, second.answer
        assert second.old_size == first.size and second.size >= first.size + 700
        assert 1 <= second.tiles_read <= 4  # a few tiles, never the leaves
        assert watcher.size() == second.size

        # A log that flips one bit of a tile the next proof needs: the proof does not verify
        # against the root the witness keeps, and nothing is cosigned.
        append(store, 300)
        store.checkpointer.issue()

        def flip(path: str, body: bytes) -> bytes:
            return bytes([body[0] ^ 1]) + body[1:] if path.startswith("/tile/") else body

        with lying(log, flip) as liar:
            forged = watch_once(witness, liar)
        assert forged.answer.status == 422, forged.answer
        assert watcher.size() == second.size
        reasons = [reason for reason, _ in witness.state.refusals(watcher.origin)]
        assert reasons == ["the consistency proof does not verify"]

        # A log that serves its first checkpoint again (rolled back): refused, and kept.
        def stale(path: str, body: bytes) -> bytes:
            return first_note if path == "/checkpoint" else body

        with lying(log, stale) as rolled_back:
            rolled = watch_once(witness, rolled_back)
        assert rolled.answer.status == 409 and "rollback" in rolled.answer.body
        assert watcher.size() == second.size
        assert len(witness.state.refusals(watcher.origin)) == 2

        # The honest log again: cosigned from where the witness stands.
        third = watch_once(witness, log)
        assert third.answer.status == 200 and third.old_size == second.size


def test_the_watch_command_cosigns_a_served_log_once(
    practice: Practice, watcher: Watcher, tmp_path: Path
) -> None:
    if practice.settings.store.database_url is not None:
        pytest.skip("the command reads the log over HTTP alone: the test above covers both stores")
    env = {**os.environ, "CHARTLEDGER_PUBLISH_LOG": "1"}
    with served(env) as url:
        done = subprocess.run(
            [*CHARTLEDGER, "witness", "watch", "--home", str(tmp_path / "witness"), url, "--once"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        size = watcher.size()
        expected = f"cosigned {watcher.origin} at size {size} (from 0, 0 tiles read)"
        assert done.stdout.strip() == expected
        checkpoint = verified_checkpoint(httpx.get(url + "/checkpoint").text, watcher.log_vkey)
        assert checkpoint.size == size
        refused = subprocess.run(
            [*CHARTLEDGER, "witness", "watch", "--home", str(tmp_path / "nowhere"), url, "--once"],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
