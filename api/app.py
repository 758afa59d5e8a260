"""The HTTP API. This first cut serves the ledger's public state; issue 4 adds the rest."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Response

from events.checkpoints import latest_checkpoint
from events.config import StoreConfig
from events.ledger import Ledger
from events.log import tree_size
from projections.rebuild import runner_for
from projections.runner import follow


def _checkpoint_every(ledger: Ledger, stop: threading.Event) -> None:
    """Sign the log every T seconds while it grows, so a quiet spell leaves no tail unsigned."""
    while not stop.wait(ledger.checkpointer.every_seconds):
        with ledger.db.read() as c:
            size = tree_size(c)
        ledger.checkpointer.maybe_issue(size)


def create_app(config: StoreConfig) -> FastAPI:
    ledger = Ledger(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        timer = threading.Thread(target=_checkpoint_every, args=(ledger, stop), daemon=True)
        timer.start()
        views = threading.Thread(target=follow, args=(runner_for(ledger), stop), daemon=True)
        views.start()
        yield
        stop.set()
        ledger.close()

    app = FastAPI(title="Chartledger", version="0.1.0", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/checkpoints/latest", responses={200: {"content": {"text/plain": {}}}})
    def latest() -> Response:
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

    @app.get("/keys")
    def keys() -> list[dict[str, object]]:
        """The signing key history (§9): each key, its predecessor and the size it starts at."""
        return [
            {"seq": k.seq, "key_id": k.key_id, "previous": k.previous, "from_size": k.from_size}
            for k in ledger.key_history()
        ]

    return app
