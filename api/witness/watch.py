"""A witness that watches a log instead of waiting for it (docs/WITNESS.md §3.4): it fetches the
log's newest checkpoint (``GET /checkpoint``) and the tiles it needs (``GET /tile/<L>/<N>[.p/<W>]``,
C2SP tlog-tiles, docs/TILES.md), builds the consistency proof from the checkpoint it cosigned
last to the new one itself, and puts both through the same ``add-checkpoint`` checks a pushed
request gets (api/witness/protocol.py): a trusted signature, a proof that verifies against the
root it keeps, never two trees of one size. What it cosigns is served as a pushed one is, at
``GET /logs/<origin>``.

A log that serves a smaller tree than the witness cosigned has rolled back (or is a stale
mirror): that checkpoint is kept as evidence, as a refused push is, and the watch says so.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx

from api.tile_paths import available, tile_path
from api.witness.protocol import SIZE_TYPE, Answer, Witness, parse_request
from events.tiles import HASH_SIZE, TileMismatch, TileReader, consistency_proof
from verify.errors import MalformedInput


class WatchError(RuntimeError):
    """The log could not be read, or what it served is not a checkpoint or tile."""


@dataclass(frozen=True)
class Watched:
    """What one look at the log came to: ``answer`` as a pushed request would get it."""

    origin: str
    old_size: int
    size: int
    answer: Answer
    tiles_read: int


class HttpTiles(TileReader):
    """The tiles of a tree of ``size`` leaves, fetched from the log over HTTP, each once, at
    the width the tree has (a full tile, or the partial one ``.p/<W>``)."""

    def __init__(self, client: httpx.Client, size: int) -> None:
        super().__init__(None)
        self._client = client
        self._size = size

    def _read(self, level: int, index: int) -> bytes:
        width = available(self._size, level, index)
        if width == 0:
            return b""
        path = "/" + tile_path(level, index, width)
        reply = _get(self._client, path)
        if len(reply) != width * HASH_SIZE:
            raise TileMismatch(f"{path} is {len(reply)} bytes, not {width * HASH_SIZE}")
        return reply


def watch_once(witness: Witness, client: httpx.Client) -> Watched:
    """Fetch the log's newest checkpoint and cosign it if it extends what was cosigned."""
    note = _get(client, "/checkpoint")
    try:
        fetched = parse_request(b"old 0\n\n" + note)
    except MalformedInput as e:
        raise WatchError(f"GET /checkpoint is not a checkpoint: {e}") from None
    if fetched.origin not in witness.logs:
        raise WatchError(f"the log's origin {fetched.origin!r} is not a log this witness follows")
    for _ in range(2):  # again once if a push moved the witness on meanwhile
        old = witness.state.latest(fetched.origin).size
        if fetched.size < old:
            return _rolled_back(witness, fetched.origin, old, fetched.size, note)
        reader = HttpTiles(client, fetched.size)
        proof = consistency_proof(reader, old, fetched.size) if 0 < old < fetched.size else []
        lines = "".join(base64.b64encode(p).decode() + "\n" for p in proof)
        answer = witness.add_checkpoint(f"old {old}\n{lines}\n".encode() + note)
        if answer.content_type != SIZE_TYPE:  # not "the witness is at another size"
            break
    return Watched(fetched.origin, old, fetched.size, answer, reader.reads)


def _rolled_back(witness: Witness, origin: str, old: int, size: int, note: bytes) -> Watched:
    reason = f"the log serves size {size}, below the {old} cosigned: a rollback or a stale copy"
    witness.state.refused(origin, reason, note)
    return Watched(origin, old, size, Answer(409, reason + "\n"), 0)


def _get(client: httpx.Client, path: str) -> bytes:
    try:
        reply = client.get(path)
    except httpx.HTTPError as e:
        raise WatchError(f"GET {path}: {type(e).__name__}") from None
    if reply.status_code != 200:
        raise WatchError(f"GET {path}: HTTP {reply.status_code}")
    return reply.content
