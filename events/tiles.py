"""The global Merkle log kept as tiles in the store (docs/LEDGER_FORMAT.md §12).

The shape is C2SP tlog-tiles: a tile holds up to 256 consecutive hashes of one level; level 0
holds the leaf hashes, and entry N of level L+1 is the root of the full tile N of level L. A
full tile is written once and never changes; the newest, partial tile of each level is
rewritten as the log grows. Tiles are written in the same transaction as the leaves they cover.

The tiles are a cache of what the leaves determine, never trusted on their own: the signer
checks them against roots it computes from leaves (events/log.py), `verify store` recomputes
every one of them, and a proof built from a damaged one fails the reader's check.
"""

from __future__ import annotations

import bisect
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import psycopg
from eventsourcing.persistence import PersistenceError

from events.db import Cursor, Database, Dialect
from verify.merkle import leaf_hash, node_hash, root_from_leaf_hashes

log = logging.getLogger(__name__)
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # hashes in a full tile
HASH_SIZE = 32
CACHED_TILES = 64  # a reader's tiles kept, with their inner nodes: at most about 2 MB
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_LEVELS = 8  # 256**8 = 2**64 leaves
TABLE = "ledger_tiles"
_EMPTY_ROOT = root_from_leaf_hashes([])
# Leaves read at a time when tiles are built from the leaves (a store made before tiles).
BUILD_BATCH = TILE_WIDTH * 64

# The newest tile of each level of a tree of {size} leaves (its partial tile, or the full one
# before it): the frontier an append extends. Two index lookups per level.
_FRONTIER = (
    "WITH RECURSIVE lv(level) AS (SELECT 0 UNION ALL SELECT level + 1 FROM lv "
    f"WHERE level < {MAX_LEVELS - 1}), n(size) AS (SELECT {{size}}) "
    "SELECT t.level, t.idx, t.hashes FROM lv CROSS JOIN n JOIN ledger_tiles t "
    "ON t.level = lv.level AND t.idx >= ((n.size >> (8 * lv.level)) / 256) - 1 "
    "AND t.idx <= (n.size >> (8 * lv.level)) / 256"
)
FRONTIER = _FRONTIER.format(size="CAST(? AS BIGINT)")
# The same at the log's tip, for an append that has not yet read it (PostgreSQL's pipeline).
FRONTIER_AT_TIP = _FRONTIER.format(size="COALESCE(MAX(position) + 1, 0) FROM ledger_leaves")
# A partial tile is replaced by its longer self; a full one is left as it is (and the
# database refuses to change it, events/guards.py).
UPSERT = (
    "INSERT INTO ledger_tiles (level, idx, hashes) VALUES (?, ?, ?) "
    "ON CONFLICT (level, idx) DO UPDATE SET hashes = excluded.hashes "
    f"WHERE length(ledger_tiles.hashes) < {FULL_TILE_BYTES}"
)

TileRow = tuple[int, int, bytes]  # (level, index, concatenated hashes)
Frontier = list[list[bytes]]  # per level, the hashes of its newest partial tile


class TileMismatch(Exception):
    """Stored tiles disagree with what the leaves or a signed checkpoint say."""


def table_statement(dialect: Dialect) -> str:
    blob = "BLOB" if dialect == "sqlite" else "bytea"
    big = "INTEGER" if dialect == "sqlite" else "bigint"
    return (
        f"CREATE TABLE IF NOT EXISTS {TABLE} (level {big} NOT NULL, idx {big} NOT NULL, "
        f"hashes {blob} NOT NULL, PRIMARY KEY (level, idx))"
    )


def tree_size(cursor: Cursor) -> int:
    """The number of leaves in the log (one past the last position)."""
    cursor.execute("SELECT MAX(position) FROM ledger_leaves")
    row = cursor.fetchone()
    return 0 if row is None or row[0] is None else row[0] + 1


def split(data: bytes) -> list[bytes]:
    return [data[i : i + HASH_SIZE] for i in range(0, len(data), HASH_SIZE)]


def read_tile(cursor: Cursor, level: int, index: int, width: int = TILE_WIDTH) -> list[bytes]:
    """The first ``width`` hashes of tile ``level``/``index`` (C2SP tlog-tiles numbering).

    LookupError if the store has no such tile or it holds fewer than ``width`` hashes."""
    if not 0 < width <= TILE_WIDTH or level < 0 or index < 0:
        raise LookupError(f"no tile {level}/{index} of width {width}")
    cursor.execute("SELECT hashes FROM ledger_tiles WHERE level = ? AND idx = ?", (level, index))
    row = cursor.fetchone()
    data = b"" if row is None else bytes(row[0])
    if len(data) < width * HASH_SIZE:
        raise LookupError(f"tile {level}/{index} holds fewer than {width} hashes")
    return split(data[: width * HASH_SIZE])


def width_at(level: int, size: int) -> tuple[int, int]:
    """(index, width) of the newest tile of ``level`` in a tree of ``size`` leaves; width 0
    when that level has no partial tile."""
    count = size >> (TILE_HEIGHT * level)
    return count // TILE_WIDTH, count % TILE_WIDTH


# --- writing ----------------------------------------------------------------------------------


def frontier_at(rows: Iterable[tuple[int, int, bytes]], size: int) -> Frontier | None:
    """The partial tiles of a tree of ``size`` leaves from its newest stored tile of each level
    (FRONTIER's rows), or None if they do not describe exactly that tree (missing, too short,
    too long: tiles not yet built, or damaged)."""
    stored = {(int(level), int(idx)): bytes(hashes) for level, idx, hashes in rows}
    frontier: Frontier = []
    for level in range(MAX_LEVELS):
        count = size >> (TILE_HEIGHT * level)
        if count == 0:
            break
        index, width = divmod(count, TILE_WIDTH)
        if width == 0:
            index, width = index - 1, TILE_WIDTH
        data = stored.get((level, index))
        if data is None or len(data) != width * HASH_SIZE:
            return None
        frontier.append([] if width == TILE_WIDTH else split(data))
    return frontier


def load_frontier(cursor: Cursor, size: int) -> Frontier | None:
    cursor.execute(FRONTIER, (size,))
    return frontier_at(cursor.fetchall(), size)


def extend(frontier: Frontier, size: int, hashes: Sequence[bytes]) -> list[TileRow]:
    """Add ``hashes`` (leaf hashes of positions ``size`` on) to the tree whose partial tiles are
    ``frontier`` (updated in place); the tiles to write, partial ones included."""
    writes: list[TileRow] = []
    added = list(hashes)
    level = 0
    while added:
        while len(frontier) <= level:
            frontier.append([])
        count = size >> (TILE_HEIGHT * level)  # entries of this level before the addition
        base = count // TILE_WIDTH
        entries = frontier[level] + added
        above = []
        for k in range(0, len(entries), TILE_WIDTH):
            chunk = entries[k : k + TILE_WIDTH]
            writes.append((level, base + k // TILE_WIDTH, b"".join(chunk)))
            if len(chunk) == TILE_WIDTH:
                above.append(root_from_leaf_hashes(chunk))
        frontier[level] = entries[len(entries) - len(entries) % TILE_WIDTH :]
        added = above
        level += 1
    return writes


def write_tiles(cursor: Cursor, writes: Sequence[TileRow]) -> None:
    if writes:
        cursor.executemany(UPSERT, writes)


def append_tiles(cursor: Cursor, size: int, leaves: Sequence[bytes]) -> None:
    """Under the writer lock, inside the append's transaction: the tiles for ``leaves`` (leaf
    bytes) appended at positions ``size`` on. Tiles that do not describe the tree of ``size``
    leaves (a store made before tiles) are first built from the leaves."""
    frontier = load_frontier(cursor, size)
    if frontier is None:
        frontier = build_tiles(cursor, size)
    write_tiles(cursor, extend(frontier, size, [leaf_hash(leaf) for leaf in leaves]))


def build_tiles(cursor: Cursor, size: int) -> Frontier:
    """Every tile of the first ``size`` leaves, computed from the leaves in batches (bounded
    memory), written over any partial tile; full tiles already stored are kept as they are
    (`verify store` checks them). The migration of a store made before tiles."""
    frontier: Frontier = []
    position = 0
    while position < size:
        stop = min(size, position + BUILD_BATCH)
        cursor.execute(
            "SELECT leaf FROM ledger_leaves WHERE position >= ? AND position < ? ORDER BY position",
            (position, stop),
        )
        hashes = [leaf_hash(bytes(leaf)) for (leaf,) in cursor.fetchall()]
        if len(hashes) != stop - position:
            raise TileMismatch(f"positions {position}..{stop - 1} are not all in ledger_leaves")
        # Only the final partial tiles are written at the end: each batch's would be
        # replaced by the next one's.
        write_tiles(cursor, [w for w in extend(frontier, position, hashes) if _full(w)])
        position = stop
    write_tiles(cursor, partial_rows(frontier, size))
    return frontier


def _full(row: TileRow) -> bool:
    return len(row[2]) == FULL_TILE_BYTES


def partial_rows(frontier: Frontier, size: int) -> list[TileRow]:
    rows = []
    for level, hashes in enumerate(frontier):
        if hashes:
            rows.append((level, width_at(level, size)[0], b"".join(hashes)))
    return rows


def open_tiles(db: Database) -> None:
    """When a store is opened: build its tiles if they do not describe the log (a store made
    before tiles). Tiles that cannot be rebuilt because the database refuses to change them
    (only a damaged tile differs from what the leaves give), or a log with a position
    missing, are left for `verify store` to name: opening the store, and so `chartledger
    verify`, still works; appends and signing refuse until the schema owner removes the
    damaged tiles, which the next opening rebuilds (docs/LEDGER_FORMAT.md §12)."""
    try:
        with db.write() as c:
            ensure_tiles(c)
    except (sqlite3.DatabaseError, psycopg.Error, PersistenceError, TileMismatch) as e:
        log.error("the stored tiles do not describe the log and cannot be rebuilt: %s", e)


def ensure_tiles(cursor: Cursor) -> bool:
    """Under the writer lock: build the tiles if they do not describe the log as it stands.
    True when they had to be built."""
    size = tree_size(cursor)
    if load_frontier(cursor, size) is not None:
        return False
    build_tiles(cursor, size)
    return True


# --- reading ----------------------------------------------------------------------------------


class TileReader:
    """Tiles read through one cursor, each at most once per reader; ``reads`` counts the
    statements sent and ``hashes`` the hashes they returned."""

    def __init__(self, cursor: Cursor | None) -> None:
        self._cursor = cursor  # None for a reader that overrides _read
        # The tiles read, least recently used first. Kept to CACHED_TILES: a proof over many
        # positions walks the log left to right, so a level-0 tile it has passed is not asked
        # for again, while the few tiles above stay in use; unbounded, a production's reader
        # held every tile its events touched (about 13 KB an event).
        self._tiles: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        # per tile, its complete aligned blocks' roots by height: inner[r][j] covers 2**r entries
        self._inner: dict[tuple[int, int], list[list[bytes]]] = {}
        self.reads = 0
        self.hashes = 0

    def _tile(self, level: int, index: int, need: int) -> list[bytes]:
        """Tile ``level``/``index``, read once while cached (again only if it must be wider
        than read)."""
        key = (level, index)
        tile = self._tiles.get(key)
        if tile is None or len(tile) < need:
            data = self._read(level, index)
            if len(data) % HASH_SIZE:
                raise TileMismatch(f"tile {level}/{index} is {len(data)} bytes long")
            tile = split(data)
            self.reads += 1
            self.hashes += len(tile)
            self._tiles[key] = tile
            self._inner.pop(key, None)
            if len(self._tiles) > CACHED_TILES:
                evicted, _ = self._tiles.popitem(last=False)
                self._inner.pop(evicted, None)
        self._tiles.move_to_end(key)
        if len(tile) < need:
            raise TileMismatch(f"tile {level}/{index} lacks entries below {need}")
        return tile

    @property
    def cached(self) -> int:
        """Tiles held now (at most CACHED_TILES)."""
        return len(self._tiles)

    def _read(self, level: int, index: int) -> bytes:
        """Tile ``level``/``index`` as stored (empty when there is none)."""
        assert self._cursor is not None, "a reader without a cursor reads its tiles itself"
        self._cursor.execute(
            "SELECT hashes FROM ledger_tiles WHERE level = ? AND idx = ?", (level, index)
        )
        row = self._cursor.fetchone()
        return b"" if row is None else bytes(row[0])

    def entries(self, level: int, start: int, count: int) -> list[bytes]:
        """``count`` consecutive hashes of ``level`` from entry ``start``, all in one tile."""
        index, offset = divmod(start, TILE_WIDTH)
        if offset + count > TILE_WIDTH:
            raise ValueError("entries span two tiles")
        return self._tile(level, index, offset + count)[offset : offset + count]

    def perfect(self, lo: int, height: int) -> bytes:
        """The root of the perfect subtree of 2**height leaves starting at leaf ``lo``.

        Each tile's inner nodes are hashed once per reader (at most 255 hashes), so the many
        proofs of one completeness proof share the tiles they have in common."""
        level, rest = divmod(height, TILE_HEIGHT)
        index, offset = divmod(lo >> (TILE_HEIGHT * level), TILE_WIDTH)
        tile = self._tile(level, index, offset + (1 << rest))
        inner = self._inner.get((level, index))
        if inner is None:
            inner = [tile]
            while len(inner[-1]) > 1:
                below = inner[-1]
                pairs = range(0, len(below) - 1, 2)
                inner.append([node_hash(below[i], below[i + 1]) for i in pairs])
            self._inner[level, index] = inner
        return inner[rest][offset >> rest]

    def nodes(self, lo: int, hi: int) -> list[tuple[int, bytes]]:
        """The maximal aligned perfect subtrees covering leaves [lo, hi), largest first when
        ``lo`` is aligned to a power of two at least hi - lo (as every range a proof asks for)."""
        found = []
        while lo < hi:
            height = (lo & -lo).bit_length() - 1 if lo else 64
            while lo + (1 << height) > hi:
                height -= 1
            found.append((1 << height, self.perfect(lo, height)))
            lo += 1 << height
        return found

    def root(self, lo: int, hi: int) -> bytes:
        """The RFC 9162 root of leaves [lo, hi), for a range a proof asks for."""
        nodes = self.nodes(lo, hi)
        if not nodes:
            return _EMPTY_ROOT
        acc = nodes[-1][1]
        for _, left in reversed(nodes[:-1]):
            acc = node_hash(left, acc)
        return acc


def root_at(cursor: Cursor, size: int) -> bytes:
    """The log's root at ``size`` from the stored tiles: one partial tile per level."""
    return TileReader(cursor).root(0, size)


def inclusion_proof(reader: TileReader, index: int, size: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[size]) from the tiles, lowest sibling first (as
    verify.merkle.inclusion_proof_from_hashes, which reads every leaf)."""
    if not 0 <= index < size:
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            path.append(reader.root(mid, hi))
            hi = mid
        else:
            path.append(reader.root(lo, mid))
            lo = mid
    path.reverse()
    return path


def consistency_proof(reader: TileReader, size1: int, size2: int) -> list[bytes]:
    """RFC 9162 PROOF(size1, D[size2]) from the tiles, lowest node first."""
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    proof: list[bytes] = []
    lo, hi, m, whole = 0, size2, size1, True
    while m != hi - lo:
        mid = lo + _split(hi - lo)
        if m <= mid - lo:
            proof.append(reader.root(mid, hi))
            hi = mid
        else:
            proof.append(reader.root(lo, mid))
            m -= mid - lo
            lo = mid
            whole = False
    if not whole:
        proof.append(reader.root(lo, hi))
    proof.reverse()
    return proof


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def batch_proof(reader: TileReader, size: int, positions: Sequence[int]) -> list[bytes]:
    """verify.bundle_format.batch_proof from the tiles: the roots of the largest RFC 9162
    subtrees holding none of ``positions`` (sorted, distinct), left to right. O(k log n)
    hashes read for k positions, where the leaves' version reads every leaf."""
    if any(not 0 <= p < size for p in positions[:1] + positions[-1:]):
        raise ValueError(f"positions outside a tree of size {size}")
    proof: list[bytes] = []

    def walk(lo: int, hi: int) -> None:
        i = bisect.bisect_left(positions, lo)
        if i == len(positions) or positions[i] >= hi:
            proof.append(reader.root(lo, hi))
            return
        if hi - lo == 1:
            return
        mid = lo + _split(hi - lo)
        walk(lo, mid)
        walk(mid, hi)

    if size:
        walk(0, size)
    return proof
