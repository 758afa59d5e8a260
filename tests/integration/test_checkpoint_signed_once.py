"""A checkpoint of size N is signed once, however many issuers ask at once: the signer's timer
on one host, a production's checkpoint on another, ``chartledger checkpoint`` on a third
(events/checkpoints.py). Several ledgers on one store play them; each counts its signatures."""

from __future__ import annotations

import threading
from datetime import datetime

from events.checkpoints import Checkpointer
from events.config import StoreConfig
from events.keys import SigningKey
from events.ledger import Ledger
from tests.support import QUIET, append_charts, patient

ISSUERS = 4


def _counting(checkpointer: Checkpointer, signed: list[int]) -> None:
    """Count what this issuer signs (its own signing method, wrapped; nothing replaced)."""
    sign = checkpointer._sign

    def counted(
        keys: list[SigningKey], size: int, root: bytes, heads: bytes, at: datetime | None
    ) -> bytes:
        signed.append(size)
        return sign(keys, size, root, heads, at)

    checkpointer._sign = counted  # type: ignore[method-assign]


def test_issuers_asking_at_once_sign_each_size_once(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    append_charts(ledger, [patient() for _ in range(3)])
    issuers = [Ledger(store_config, **QUIET) for _ in range(ISSUERS)]
    signed: list[int] = []
    try:
        for other in issuers:
            _counting(other.checkpointer, signed)
        start = threading.Barrier(ISSUERS)
        notes = []

        def issue(other: Ledger) -> None:
            start.wait()
            notes.append(other.checkpointer.issue())

        threads = [threading.Thread(target=issue, args=(other,)) for other in issuers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(signed) == 1  # one signature, the others found it
        assert {n.body for n in notes} == {notes[0].body} and notes[0].size == signed[0]
    finally:
        for other in issuers:
            other.close()
