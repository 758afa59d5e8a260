"""The ledger's public state: the newest signed checkpoint and the signing key history.

Neither reveals PHI (a checkpoint is a size, a root and a signature), so neither needs a session;
issuing a checkpoint and verifying the store are for owners.
"""

from __future__ import annotations

from fastapi import Response

from api.deps import LedgerDep
from api.roles import Owner
from api.routing import Router
from api.schemas import CheckpointOut, KeyOut, VerificationOut
from events.checkpoints import latest_checkpoint
from events.verification import verify_configured_store

router = Router(tags=["checkpoints"])


@router.get("/checkpoints/latest", responses={200: {"content": {"text/plain": {}}}})
def latest(ledger: LedgerDep) -> Response:
    """The newest signed checkpoint, as a C2SP signed note (docs/LEDGER_FORMAT.md §8)."""
    with ledger.db.read() as c:
        checkpoint = latest_checkpoint(c)
    if checkpoint is None:
        checkpoint = ledger.checkpointer.issue()
    with ledger.db.read() as c:
        c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (checkpoint.size,))
        row = c.fetchone()
    assert row is not None
    return Response(bytes(row[0]), media_type="text/plain; charset=utf-8")


@router.get("/keys")
def keys(ledger: LedgerDep) -> list[KeyOut]:
    """The signing key history (§9): each key, its predecessor and the size it starts at."""
    return [
        KeyOut(seq=k.seq, key_id=k.key_id, previous=k.previous, from_size=k.from_size)
        for k in ledger.key_history()
    ]


@router.post("/checkpoints", status_code=201)
def issue(principal: Owner, ledger: LedgerDep) -> CheckpointOut:
    """Sign the log as it stands now (owners)."""
    checkpoint = ledger.checkpointer.issue()
    with ledger.db.read() as c:
        c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (checkpoint.size,))
        row = c.fetchone()
    assert row is not None
    return CheckpointOut(size=checkpoint.size, note=bytes(row[0]).decode())


@router.get("/store/verification")
def verification(principal: Owner, ledger: LedgerDep) -> VerificationOut:
    """Check the whole store now: every hash, link, root, signature and payload (owners). As
    slow as ``chartledger verify``; the problems name positions, never payloads."""
    trusted = ledger.practice.get("genesis_key_id")
    report, opened, disposed = verify_configured_store(ledger, trusted, workers=1)
    return VerificationOut(
        ok=report.ok,
        size=report.size,
        events=report.events,
        checkpoints=report.checkpoints,
        keys=report.keys,
        root=report.root.hex(),
        payloads_opened=opened,
        payloads_disposed=disposed,
        problems=[p.line() for p in report.problems],
    )
