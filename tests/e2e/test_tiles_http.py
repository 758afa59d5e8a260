"""Issue 22: the log served as C2SP tlog-tiles to witnesses and auditors, fetched over HTTP from a
real ``chartledger serve`` on both stores and checked with the test's own reading of the specs
(tests/reference_tiles.py, C2SP signed-note and tlog-checkpoint here), never the server's or
verify/'s code: the tiles reproduce each signed root, and prove the later checkpoint consistent
with the earlier one. Who may read them: auditors and owners by default, anyone when the
practice publishes its log; full public tiles are cacheable, the rest never stored."""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import main as chartledger
from api.settings import Settings
from events.ledger import Ledger
from tests import reference_merkle
from tests.e2e.conftest import Practice, add_member, served
from tests.reference_tiles import TiledTree, consistent, path_of
from tests.support import Chart, patient

NO_STORE = "no-store"


@dataclass(frozen=True)
class Signed:
    origin: str
    size: int
    root: bytes
    text: str


def verified_checkpoint(text: str, vkey: str) -> Signed:
    """A checkpoint note checked as C2SP signed-note says: the vkey is
    ``name+hex(key hash)+base64(0x01 || Ed25519 key)``, the key hash the first 4 bytes of
    SHA-256(name || "\\n" || 0x01 || key); a signature line is "— name base64(key hash ||
    signature)" after an empty line; the signature is over the body, every line up to the
    empty one, each with its newline. tlog-checkpoint: origin, size and base64 root first."""
    name, key_hash, blob = vkey.split("+", 2)  # base64 may hold "+" too
    key = base64.b64decode(blob)
    assert key[0] == 1 and len(key) == 33
    assert hashlib.sha256(name.encode() + b"\n" + key).digest()[:4].hex() == key_hash
    body, _, signatures = text.partition("\n\n")
    body += "\n"
    found = False
    for line in signatures.splitlines():
        signer, _, sig = line.removeprefix("\u2014 ").partition(" ")
        raw = base64.b64decode(sig)
        if signer == name and raw[:4].hex() == key_hash:
            Ed25519PublicKey.from_public_bytes(key[1:]).verify(raw[4:], body.encode())
            found = True
    assert found, "no signature line by the log's key"
    origin, size, root = body.splitlines()[:3]
    assert origin == name
    return Signed(origin, int(size), base64.b64decode(root), text)


def append(ledger: Ledger, count: int) -> None:
    for start in range(0, count, 100):
        batch = min(100, count - start)
        ledger.save(*[Chart(subjects=(patient(),), text="x") for _ in range(batch)])


def tree_over_http(url: str, size: int, headers: dict[str, str]) -> TiledTree:
    def fetch(level: int, n: int, width: int) -> bytes:
        reply = httpx.get(url + path_of(level, n, width), headers=headers)
        assert reply.status_code == 200, (path_of(level, n, width), reply.text)
        assert reply.headers["content-type"] == "application/octet-stream"
        return reply.content

    return TiledTree(size, fetch)


def all_leaves(ledger: Ledger, size: int) -> list[bytes]:
    with ledger.db.read() as c:
        c.execute("SELECT leaf FROM ledger_leaves WHERE position < ? ORDER BY position", (size,))
        return [bytes(r[0]) for r in c.fetchall()]


def test_tiles_fetched_over_http_reproduce_the_signed_roots_and_prove_consistency(
    practice: Practice, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = practice.owner()
    auditor = add_member(practice, owner, "audrey", "Audrey Auditor", "auditor").login()
    clinician = add_member(practice, owner, "casey", "Dr. Casey", "clinician").login()
    ledger: Ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    append(ledger, 300)
    ledger.checkpointer.issue()
    capsys.readouterr()
    assert chartledger(["witness", "log-key"]) == 0
    vkey = capsys.readouterr().out.strip()
    as_auditor = {"Authorization": f"Bearer {auditor.token}"}

    with served(dict(os.environ)) as url:
        first = verified_checkpoint(httpx.get(url + "/checkpoint", headers=as_auditor).text, vkey)
        assert first.size > 300
        old = tree_over_http(url, first.size, as_auditor)
        assert old.root() == first.root

        # The log grows past three full tiles; the owner has the server sign it.
        append(ledger, 600)
        as_owner = {"Authorization": f"Bearer {owner.token}"}
        signed = httpx.post(url + "/checkpoints", headers=as_owner)
        assert signed.status_code == 201, signed.text
        reply = httpx.get(url + "/checkpoint", headers=as_auditor)
        assert reply.headers["cache-control"] == NO_STORE
        second = verified_checkpoint(reply.text, vkey)
        assert second.size > 3 * 256 and second.size >= first.size + 600
        new = tree_over_http(url, second.size, as_auditor)
        assert new.root() == second.root
        proof = new.proof(first.size)
        assert consistent(first.size, second.size, first.root, second.root, proof)
        assert not consistent(first.size, second.size, first.root, new.mth(0, 2), proof)
        # Only the tiles the proof and root needed: level 0's last two, level 1's one.
        assert {level for level, _ in new.fetched} == {0, 1}
        assert len(new.fetched) <= 4
        # The same as RFC 9162 over the leaves themselves.
        leaves = all_leaves(ledger, second.size)
        assert reference_merkle.mth(leaves) == second.root
        assert proof == reference_merkle.proof(first.size, leaves)

        # A full tile is the same bytes whoever asks, and holds nothing but hashes.
        full = httpx.get(url + "/tile/0/001", headers=as_auditor)
        assert full.status_code == 200 and len(full.content) == 256 * 32
        assert full.headers["cache-control"] == NO_STORE  # the log is not public here
        hashes = [full.content[i : i + 32] for i in range(0, 256 * 32, 32)]
        assert hashes == [hashlib.sha256(b"\x00" + leaf).digest() for leaf in leaves[256:512]]

        # Auditors and owners only: no session 401, a clinician 403, both problems.
        for path in ("/checkpoint", "/tile/0/000", "/tile/1/000.p/1"):
            assert httpx.get(url + path).status_code == 401
            refused = httpx.get(url + path, headers={"Authorization": f"Bearer {clinician.token}"})
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            by_owner = httpx.get(url + path, headers=as_owner)
            assert by_owner.status_code == 200


def test_a_published_log_is_public_and_its_full_tiles_cacheable(practice: Practice) -> None:
    ledger: Ledger = practice.http.app.state.services.ledger  # type: ignore[attr-defined]
    append(ledger, 300)
    ledger.checkpointer.issue()
    with ledger.db.read() as c:
        c.execute("SELECT MAX(position) + 1 FROM ledger_leaves")
        size = int(c.fetchone()[0])  # type: ignore[index]
    settings = Settings(
        store=practice.settings.store,
        pbkdf2_iterations=practice.settings.pbkdf2_iterations,
        background=False,
        publish_log=True,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as public:
        checkpoint = public.get("/checkpoint")
        assert checkpoint.status_code == 200 and checkpoint.headers["cache-control"] == NO_STORE
        assert int(checkpoint.text.splitlines()[1]) == size
        full = public.get("/tile/0/000")
        assert full.status_code == 200
        assert full.headers["cache-control"] == "public, max-age=31536000, immutable"
        partial = public.get(path_of(0, 1, size - 256))
        assert partial.status_code == 200 and len(partial.content) == (size - 256) * 32
        assert partial.headers["cache-control"] == NO_STORE
        # A shorter partial tile of a size signed before is its prefix.
        assert public.get("/tile/0/001.p/3").content == partial.content[: 3 * 32]
        for missing in (
            path_of(0, 1, size - 256 + 1),  # wider than the log has
            "/tile/0/002",
            "/tile/1/000",  # level 1 has one hash
            "/tile/2/000.p/1",
            "/tile/0/1",  # not three digits
            "/tile/00/000",
            "/tile/0/x000/001",
            "/tile/0/000.p/0",
            "/tile/0/000.p/256",
            "/tile/64/000.p/1",
            "/tile/entries/000.p/1",  # entry bundles are not served (docs/TILES.md)
        ):
            reply = public.get(missing)
            assert reply.status_code == 404, (missing, reply.status_code)
            assert reply.headers["content-type"] == "application/problem+json"
            assert reply.headers["cache-control"] == NO_STORE
