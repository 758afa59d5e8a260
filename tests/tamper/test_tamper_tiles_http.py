"""The tiles served over HTTP (docs/TILES.md) are the stored ones, a cache the server does not
vouch for: a hash flipped in the table by the database's superuser is served as it is, and a
follower checking the tiles against the signed checkpoint (here the test's own reading of the
specs, tests/reference_tiles.py) catches it; a tile row planted beyond the tree is not served;
and the practice sends its witnesses no proof from tiles cut short."""

from __future__ import annotations

import base64

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from events.ledger import Ledger
from events.witnessing import WitnessingError, consistency_lines
from tests.reference_tiles import TiledTree, path_of
from tests.tamper.conftest import Attacker


def test_a_flipped_tile_is_caught_by_the_follower_and_a_planted_one_is_not_served(
    attacker: Attacker,
) -> None:
    settings = Settings(
        store=attacker.config, pbkdf2_iterations=1_000, background=False, publish_log=True
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as public:
        _, size, root = public.get("/checkpoint").text.splitlines()[:3]

        def fetch(level: int, n: int, width: int) -> bytes:
            reply = public.get(path_of(level, n, width))
            assert reply.status_code == 200, reply.text
            return reply.content

        assert TiledTree(int(size), fetch).root() == base64.b64decode(root)

        attacker._bypass_triggers_again()  # opening the app re-created SQLite's triggers
        ((hashes,),) = attacker.rows("SELECT hashes FROM ledger_tiles WHERE level = 0 AND idx = 0")
        damaged = bytearray(hashes)
        damaged[32 * 3 + 9] ^= 0x40
        attacker.execute(
            "UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 0", (bytes(damaged),)
        )
        assert public.get(path_of(0, 0, int(size))).content == bytes(damaged)[: 32 * int(size)]
        assert TiledTree(int(size), fetch).root() != base64.b64decode(root)

        for level, index in ((3, 0), (0, 5)):
            attacker.execute(
                "INSERT INTO ledger_tiles (level, idx, hashes) VALUES (?, ?, ?)",
                (level, index, b"\1" * 32),
            )
            assert public.get(path_of(level, index, 1)).status_code == 404


def test_no_proof_is_sent_to_a_witness_from_tiles_cut_short(attacker: Attacker) -> None:
    ((hashes,),) = attacker.rows("SELECT hashes FROM ledger_tiles WHERE level = 0 AND idx = 0")
    size = len(hashes) // 32
    # Opened before the cut: opening rebuilds tiles that are missing.
    ledger = Ledger(attacker.config, every_events=10**9, every_seconds=10**9)
    try:
        assert len(consistency_lines(ledger.db, 2, size)) > 0
        attacker._bypass_triggers_again()  # opening re-created SQLite's triggers
        attacker.execute(
            "UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 0", (bytes(hashes)[:64],)
        )
        with pytest.raises(WitnessingError, match="chartledger verify"):
            consistency_lines(ledger.db, 2, size)
    finally:
        ledger.close()
