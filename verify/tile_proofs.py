"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): tile paths, and RFC 9162 roots and proofs
computed from tiles alone, reading only the tiles they need (docs/TILES.md).

A tile at level L holds up to 256 consecutive hashes, each the root of a perfect subtree of
256**L leaves; tile N at level L covers the leaves [N * 256**(L+1), (N+1) * 256**(L+1)). The hash of
any perfect subtree of 2**h leaves is then one stored hash (h a multiple of 8) or the root of
2**(h mod 8) neighbouring hashes of one tile. Everything else in a tree of size n is built from
those, as RFC 9162 §2.1 builds it from the leaves. ``Tiles`` is handed a reader
``(level, index, width) -> hashes`` (the store, or HTTP) and keeps what it has read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

WIDTH = 256  # hashes in a full tile
HEIGHT = 8  # tree levels one tile spans: 2**HEIGHT == WIDTH
MAX_LEVEL = 63

TileReader = Callable[[int, int, int], list[bytes]]


def tile_path(level: int, index: int, width: int = WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``, N in 3-digit elements, all but the last prefixed ``x``."""
    digits = f"{index:03d}"
    digits = "0" * (-len(digits) % 3) + digits
    parts = [digits[i : i + 3] for i in range(0, len(digits), 3)]
    encoded = "/".join([*("x" + p for p in parts[:-1]), parts[-1]])
    suffix = "" if width == WIDTH else f".p/{width}"
    return f"tile/{level}/{encoded}{suffix}"


def parse_level(text: str) -> int:
    """A tile level: decimal 0..63, no leading zeros (ValueError otherwise)."""
    if not text.isascii() or not text.isdigit() or (len(text) > 1 and text[0] == "0"):
        raise ValueError("not a tile level")
    level = int(text)
    if level > MAX_LEVEL:
        raise ValueError("not a tile level")
    return level


def parse_index(text: str) -> tuple[int, int]:
    """``<N>[.p/<W>]`` after ``tile/<L>/`` -> (index, width); ValueError if not in the spec's
    one spelling (so that each tile has exactly one URL)."""
    width = WIDTH
    if ".p/" in text:
        text, _, w = text.partition(".p/")
        if not w.isascii() or not w.isdigit() or w[0] == "0" or not 1 <= int(w) < WIDTH:
            raise ValueError("not a partial tile width")
        width = int(w)
    parts = text.split("/")
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        digits = part if last else part.removeprefix("x")
        if (not last and not part.startswith("x")) or len(digits) != 3:
            raise ValueError("not a tile index")
        if not digits.isascii() or not digits.isdigit():
            raise ValueError("not a tile index")
    if len(parts) > 1 and parts[0] == "x000":
        raise ValueError("not a tile index")  # a leading zero element: another spelling
    return int("".join(p.removeprefix("x") for p in parts)), width


def hashes_at(size: int, level: int) -> int:
    """How many hashes level ``level`` has in a tree of ``size`` leaves."""
    return size // WIDTH**level


def tile_width(size: int, level: int, index: int) -> int:
    """The width of tile ``index`` at ``level`` in a tree of ``size`` (0: no such tile)."""
    return max(0, min(WIDTH, hashes_at(size, level) - index * WIDTH))


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Tiles:
    """The tree of ``size`` leaves, read tile by tile through ``read``; each tile is read once
    (at the width the tree has), and only when a hash it holds is needed."""

    def __init__(self, read: TileReader, size: int) -> None:
        self._read = read
        self.size = size
        self._cache: dict[tuple[int, int], list[bytes]] = {}
        self.reads = 0

    def _tile(self, level: int, index: int) -> list[bytes]:
        key = (level, index)
        if key not in self._cache:
            width = tile_width(self.size, level, index)
            hashes = self._read(level, index, width)
            if len(hashes) != width or any(len(h) != 32 for h in hashes):
                raise ValueError(f"tile {level}/{index} is not {width} hashes")
            self._cache[key] = hashes
            self.reads += 1
        return self._cache[key]

    def perfect(self, start: int, count: int) -> bytes:
        """The root of the perfect subtree of ``count`` (a power of two) leaves from ``start``."""
        height = count.bit_length() - 1
        level, rest = divmod(height, HEIGHT)
        first = start >> (level * HEIGHT)  # the subtree's first hash at that level
        tile = self._tile(level, first // WIDTH)
        offset = first % WIDTH
        row = tile[offset : offset + (1 << rest)]
        while len(row) > 1:
            row = [_node(row[i], row[i + 1]) for i in range(0, len(row), 2)]
        return row[0]

    def subtree(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for the ranges RFC 9162's recursion names (``lo`` a multiple of a power
        of two at least ``hi - lo``)."""
        n = hi - lo
        if n & (n - 1) == 0:
            return self.perfect(lo, n)
        k = _split(n)
        return _node(self.perfect(lo, k), self.subtree(lo + k, hi))

    def root(self) -> bytes:
        if self.size == 0:
            return hashlib.sha256(b"").digest()
        return self.subtree(0, self.size)

    def consistency_proof(self, old: int) -> list[bytes]:
        """PROOF(old, D[size]) (RFC 9162 §2.1.4.1), as verify.merkle lists it."""
        if not 0 < old <= self.size:
            raise ValueError(f"no consistency proof from size {old} to size {self.size}")
        proof: list[bytes] = []
        lo, hi, m, whole = 0, self.size, old, True
        while m != hi - lo:
            mid = lo + _split(hi - lo)
            if m <= mid - lo:
                proof.append(self.subtree(mid, hi))
                hi = mid
            else:
                proof.append(self.subtree(lo, mid))
                m -= mid - lo
                lo = mid
                whole = False
        if not whole:
            proof.append(self.subtree(lo, hi))
        proof.reverse()
        return proof

    def inclusion_proof(self, index: int) -> list[bytes]:
        """PATH(index, D[size]) (RFC 9162 §2.1.3.1), lowest sibling first."""
        if not 0 <= index < self.size:
            raise ValueError(f"no leaf {index} in a tree of size {self.size}")
        proof: list[bytes] = []
        lo, hi = 0, self.size
        while hi - lo > 1:
            mid = lo + _split(hi - lo)
            if index < mid:
                proof.append(self.subtree(mid, hi))
                hi = mid
            else:
                proof.append(self.subtree(lo, mid))
                lo = mid
        proof.reverse()
        return proof
