"""The log as C2SP tlog-tiles serves it (docs/TILES.md): ``GET /checkpoint`` and
``GET /tile/<L>/<N>[.p/<W>]``, read-only, for witnesses and auditors.

Who may read them is a setting: auditors (and owners) by default, anyone when the practice
publishes its log (``CHARTLEDGER_PUBLISH_LOG``). Both hold hashes and signatures only. Entry
bundles (``/tile/entries/...``) are not served: a leaf names patients, users, event types and
times, which are for the audit views of those allowed to see them, not for a log's followers.

A full tile never changes, so when the log is public it may be cached for good; a partial tile
and the checkpoint change as the log grows and are never stored (``no-store``, the default of
api/security_headers.py).
"""

from __future__ import annotations

from fastapi import Response

from api.deps import Caller, CallerDep
from api.errors import Forbidden, NotFound
from api.roles import allowed
from api.routing import Router
from api.tile_paths import WIDTH, available, parse_index, parse_level
from events.tiles import read_tile, tree_size
from events.witnessing import latest_note

router = Router(tags=["tiles"])
READERS = ("auditor",)
TILE_TYPE = "application/octet-stream"
FOREVER = "public, max-age=31536000, immutable"  # a year: RFC 9111 §5.2.2.1's usual "forever"


def admit(caller: Caller) -> None:
    """Let the caller in if the log is published, or they are an auditor (or an owner)."""
    if caller.services.settings.publish_log:
        return
    principal = caller.principal()
    try:
        allowed(principal, READERS)
    except Forbidden:
        caller.refuse_role(principal, READERS)
        raise


@router.get("/checkpoint", responses={200: {"content": {"text/plain": {}}}})
def checkpoint(caller: CallerDep) -> Response:
    """The newest signed checkpoint, a C2SP signed note (docs/LEDGER_FORMAT.md §8), exactly as
    stored and as ``GET /checkpoints/latest`` answers it."""
    admit(caller)
    note = latest_note(caller.services.ledger.db)
    if note is None:
        raise NotFound("no checkpoint has been signed yet")
    return Response(note, media_type="text/plain; charset=utf-8")


@router.get("/tile/{level}/{tile:path}", responses={200: {"content": {TILE_TYPE: {}}}})
def tile(level: str, tile: str, caller: CallerDep) -> Response:
    """The hashes of one tile, 32 bytes each, concatenated: a full tile (``<N>``, 256 hashes)
    or the first ``W`` of a partial one (``<N>.p/<W>``). 404 for a tile the log does not (yet)
    have at that width, and for any other spelling of a tile's path."""
    admit(caller)
    try:
        number, (index, width) = parse_level(level), parse_index(tile)
    except ValueError:
        raise NotFound("no such tile: see docs/TILES.md for the paths") from None
    ledger = caller.services.ledger
    # A partial tile of any width the log has reached is the start of the tile as it is now:
    # the hashes of a tile are only ever appended to, in the transaction of their leaves. Only
    # tiles of the tree as it stands are served: a row planted beyond it is nobody's tile.
    try:
        with ledger.db.read() as c:
            if available(tree_size(c), number, index) < width:
                raise LookupError("beyond the tree")
            hashes = read_tile(c, number, index, width)
    except LookupError:
        raise NotFound("the log has no such tile yet") from None
    response = Response(b"".join(hashes), media_type=TILE_TYPE)
    if width == WIDTH and caller.services.settings.publish_log:
        response.headers["Cache-Control"] = FOREVER
    return response
