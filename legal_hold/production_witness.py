"""The bundle's ``witness/`` area (docs/BUNDLE_FORMAT.md §13): the production's checkpoint with
the cosignatures the practice keeps for it, and the TSA responses that timestamp it.

The checkpoint is signed for the production, so no witness has seen it yet: it is sent to the
practice's witnesses and TSA first, on this thread. One that is down or refuses leaves the bundle
without its cosignature (logged, by URL and reason only), and never stops the production.
"""

from __future__ import annotations

import logging
from pathlib import Path

from events.db import Database
from events.ledger import Ledger
from events.witnessing import Outward, WitnessingError, send_all
from verify.bundle_witness import WITNESS_NOTE

log = logging.getLogger("chartledger.production")


def send_out(ledger: Ledger) -> None:
    try:
        outward = Outward.load(ledger.config.home)
    except WitnessingError as e:
        log.warning("the bundle's checkpoint is not sent out: %s", e)
        return
    if outward.empty:
        return
    for failure in send_all(ledger.db, outward):
        log.warning("the bundle's checkpoint lacks a cosignature or timestamp: %s", failure)


def write_witness_files(root: Path, db: Database, note: bytes, size: int) -> None:
    """``witness/checkpoint.note`` when some witness cosigned ``size``, and one
    ``witness/timestamp-<n>.tsr`` per TSA response, in ascending TSA URL order."""
    with db.read() as c:
        c.execute("SELECT line FROM ledger_cosignatures WHERE size = ? ORDER BY witness", (size,))
        lines = [str(row[0]) for row in c.fetchall()]
        c.execute("SELECT response FROM ledger_timestamps WHERE size = ? ORDER BY tsa", (size,))
        responses = [bytes(row[0]) for row in c.fetchall()]
    if not lines and not responses:
        return
    (root / "witness").mkdir()
    if lines:
        (root / WITNESS_NOTE).write_bytes(note + "".join(line + "\n" for line in lines).encode())
    for number, response in enumerate(responses, 1):
        (root / "witness" / f"timestamp-{number}.tsr").write_bytes(response)
