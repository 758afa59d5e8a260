"""Tiles read the way C2SP tlog-tiles describes them, only for testing; shares no code with the
server (``events/``, ``api/``) or ``verify/``.

Written from https://c2sp.org/tlog-tiles ("the n-th tile at level l is the sequence of
MTH(D[(n * 256 + i) * 256**l : (n * 256 + i + 1) * 256**l])"; "the partial tile at level l for
a tree of size s has floor(s / 256**l) mod 256 entries"; N in zero-padded 3-digit path
elements, all but the last prefixed with x) and RFC 9162 §2.1 (MTH, PATH, PROOF and the
verification of a consistency proof, §2.1.4.2). The tile width is a parameter so that small
trees have several levels of tiles; the spec's is 256. Naive on purpose, like
tests/reference_merkle.py: every hash is found by the RFC's recursion, down to where a tile
holds it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from tests import reference_merkle

Fetch = Callable[[int, int, int], bytes]  # (level, index, width) -> the tile's bytes


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def path_of(level: int, index: int, width: int, full: int = 256) -> str:
    """The URL path of a tile, spelled by the spec's rules."""
    text = str(index)
    while len(text) % 3:
        text = "0" + text
    elements = [text[i : i + 3] for i in range(0, len(text), 3)]
    n = "/".join(["x" + e for e in elements[:-1]] + [elements[-1]])
    return f"/tile/{level}/{n}" + ("" if width == full else f".p/{width}")


def tiles_from_entries(entries: list[bytes], full: int) -> dict[tuple[int, int], list[bytes]]:
    """Every tile (full or partial) of the tree of ``entries``, by the spec's formula."""
    size, tiles, level = len(entries), {}, 0
    while size // full**level > 0:
        span = full**level
        count = size // span  # hashes at this level
        for n in range((count + full - 1) // full):
            width = min(full, count - n * full)
            tiles[(level, n)] = [
                reference_merkle.mth(entries[(n * full + i) * span : (n * full + i + 1) * span])
                for i in range(width)
            ]
        level += 1
    return tiles


class TiledTree:
    """The tree of ``size`` entries, seen only through its tiles (``fetch``)."""

    def __init__(self, size: int, fetch: Fetch, full: int = 256) -> None:
        self.size, self.full, self._fetch = size, full, fetch
        self.fetched: dict[tuple[int, int], list[bytes]] = {}

    def width(self, level: int, n: int) -> int:
        count = self.size // self.full**level
        return self.full if (n + 1) * self.full <= count else count % self.full

    def _stored(self, level: int, i: int) -> bytes:
        """The i-th hash of level ``level`` (covering ``full**level`` entries)."""
        n = i // self.full
        if (level, n) not in self.fetched:
            data = self._fetch(level, n, self.width(level, n))
            assert len(data) == 32 * self.width(level, n), (level, n, len(data))
            self.fetched[(level, n)] = [data[j : j + 32] for j in range(0, len(data), 32)]
        return self.fetched[(level, n)][i % self.full]

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]): a stored hash where a tile holds one, else RFC 9162's split."""
        n = hi - lo
        level, span = 0, 1
        while span * self.full <= n:
            span, level = span * self.full, level + 1
        if n == span and lo % span == 0:
            return self._stored(level, lo // span)
        k = 1
        while k * 2 < n:
            k *= 2
        return _h(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))

    def root(self) -> bytes:
        return _h(b"") if self.size == 0 else self.mth(0, self.size)

    def path(self, m: int, lo: int = 0, hi: int | None = None) -> list[bytes]:
        """PATH(m, D[lo:hi]) (RFC 9162 §2.1.3.1), m counted from lo."""
        hi = self.size if hi is None else hi
        n = hi - lo
        if n == 1:
            return []
        k = 1
        while k * 2 < n:
            k *= 2
        if m < k:
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def proof(self, m: int) -> list[bytes]:
        """PROOF(m, D[n]) (RFC 9162 §2.1.4.1)."""
        return self._subproof(m, 0, self.size, True)

    def _subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if b else [self.mth(lo, hi)]
        k = 1
        while k * 2 < n:
            k *= 2
        if m <= k:
            return [*self._subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


def consistent(size1: int, size2: int, root1: bytes, root2: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 §2.1.4.2, step by step."""
    if len(root1) != 32 or len(root2) != 32:
        return False
    if size1 == size2:
        return root1 == root2 and not proof
    if not 0 < size1 < size2 or not proof or any(len(p) != 32 for p in proof):
        return False
    if size1 & (size1 - 1) == 0:  # step 1: size1 a power of two
        proof = [root1, *proof]
    fn, sn = size1 - 1, size2 - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]  # step 5
    for c in proof[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = _h(b"\x01" + c + fr)
            sr = _h(b"\x01" + c + sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = _h(b"\x01" + sr + c)
        fn, sn = fn >> 1, sn >> 1
    return fr == root1 and sr == root2 and sn == 0  # step 7
