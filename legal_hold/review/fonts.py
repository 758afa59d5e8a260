"""The renderings' fonts: vendored TrueType files, their metrics, and per-document subsets.

A production must render any script on any machine, so the fonts travel with the code
(``fonts/``, each with its licence): DejaVu Sans and DejaVu Sans Bold (Latin, Greek, Cyrillic and
more) and Droid Sans Fallback (CJK), which draws what DejaVu lacks. Each PDF embeds only the
glyphs it uses: ``Subset`` hands out glyph numbers in order of first use as text is drawn (they
are the PDF's CIDs), and ``Subset.font_file`` then writes a small TrueType file of exactly those
glyphs (and the components of composite ones), renumbered, with their hinting instructions left
out (the hinting tables go too: glyphs are drawn unhinted, which at print and screen sizes of
today is what viewers do anyway). A general subsetter (fontTools) takes tens of milliseconds a
font; this one copies glyph bytes, which is what keeps thousands of PDFs cheap.

Pure functions of the font bytes and the text: the same text gives the same subset bytes.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

FONT_DIR = Path(__file__).parent / "fonts"
REGULAR, BOLD, FALLBACK = "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DroidSansFallbackFull.ttf"
# Composite glyph flags (OpenType 'glyf'): which fields follow each component.
ARG_WORDS, HAVE_SCALE, MORE, XY_SCALE, TWO_BY_TWO, INSTRUCTIONS = 1, 8, 0x20, 0x40, 0x80, 0x100


class FontError(ValueError):
    """A font file this module cannot read (not TrueType outlines, or a table missing)."""


@dataclass
class TrueType:
    """One TrueType font: its tables, character map, advances and glyph outlines."""

    name: str  # PostScript-like name for the PDF, e.g. "DejaVuSans"
    data: bytes
    tables: dict[bytes, tuple[int, int]]
    units: int
    cmap: dict[int, int]
    advances: list[int]
    loca: list[int]
    bbox: tuple[int, int, int, int]
    ascent: int
    descent: int
    cap_height: int
    _stripped: dict[int, bytes] = field(default_factory=dict)

    def table(self, tag: bytes) -> bytes:
        offset, length = self.tables[tag]
        return self.data[offset : offset + length]

    def width(self, glyph: int) -> int:
        """The glyph's advance in thousandths of the em (PDF glyph space)."""
        advance = self.advances[min(glyph, len(self.advances) - 1)]
        return round(advance * 1000 / self.units)

    def scaled(self, value: int) -> int:
        return round(value * 1000 / self.units)

    def glyph(self, glyph: int) -> bytes:
        """The glyph's outline without hinting instructions (empty for a blank glyph)."""
        found = self._stripped.get(glyph)
        if found is None:
            start, end = self.loca[glyph], self.loca[glyph + 1]
            found = _strip(self.data[self.tables[b"glyf"][0] + start :][: end - start])
            self._stripped[glyph] = found
        return found


def _strip(raw: bytes) -> bytes:
    if len(raw) < 10:
        return b""
    contours = struct.unpack(">h", raw[:2])[0]
    if contours >= 0:  # simple: header, end points, instruction length and instructions, rest
        at = 10 + 2 * contours
        length = struct.unpack(">H", raw[at : at + 2])[0]
        return raw[:at] + b"\0\0" + raw[at + 2 + length :]
    at, flags = 10, MORE
    while flags & MORE:
        flags = struct.unpack(">H", raw[at : at + 2])[0]
        at += 4 + (4 if flags & ARG_WORDS else 2)
        at += 2 if flags & HAVE_SCALE else 4 if flags & XY_SCALE else 8 if flags & TWO_BY_TWO else 0
    if not flags & INSTRUCTIONS:
        return raw[:at]
    # Clear the flag on the last component and drop the instructions after it.
    out = bytearray(raw[:at])
    last = _last_component(raw)
    struct.pack_into(">H", out, last, flags & ~INSTRUCTIONS)
    return bytes(out)


def _last_component(raw: bytes) -> int:
    at, flags, last = 10, MORE, 10
    while flags & MORE:
        last = at
        flags = struct.unpack(">H", raw[at : at + 2])[0]
        at += 4 + (4 if flags & ARG_WORDS else 2)
        at += 2 if flags & HAVE_SCALE else 4 if flags & XY_SCALE else 8 if flags & TWO_BY_TWO else 0
    return last


def components(outline: bytes) -> list[tuple[int, int]]:
    """(offset of the glyph index, glyph index) of each component of a composite outline."""
    if len(outline) < 10 or struct.unpack(">h", outline[:2])[0] >= 0:
        return []
    found, at, flags = [], 10, MORE
    while flags & MORE:
        flags, glyph = struct.unpack(">HH", outline[at : at + 4])
        found.append((at + 2, glyph))
        at += 4 + (4 if flags & ARG_WORDS else 2)
        at += 2 if flags & HAVE_SCALE else 4 if flags & XY_SCALE else 8 if flags & TWO_BY_TWO else 0
    return found


def parse(data: bytes, name: str) -> TrueType:
    """Read the tables a PDF subset needs; refuse fonts without TrueType outlines."""
    if data[:4] not in (b"\x00\x01\x00\x00", b"true"):
        raise FontError(f"{name}: not a TrueType font file")
    count = struct.unpack(">H", data[4:6])[0]
    tables = {}
    for i in range(count):
        tag, _sum, offset, length = struct.unpack(">4sIII", data[12 + 16 * i : 28 + 16 * i])
        tables[tag] = (offset, length)
    # No cmap is needed to draw by glyph number (a PDF's embedded subset has none).
    for tag in (b"head", b"hhea", b"maxp", b"hmtx", b"loca", b"glyf"):
        if tag not in tables:
            raise FontError(f"{name}: no {tag.decode()} table")

    def table(tag: bytes) -> bytes:
        offset, length = tables[tag]
        return data[offset : offset + length]

    head, hhea = table(b"head"), table(b"hhea")
    units = struct.unpack(">H", head[18:20])[0]
    bbox = struct.unpack(">hhhh", head[36:44])
    long_loca = struct.unpack(">h", head[50:52])[0] == 1
    glyphs = struct.unpack(">H", table(b"maxp")[4:6])[0]
    ascent, descent = struct.unpack(">hh", hhea[4:8])
    metrics = struct.unpack(">H", hhea[34:36])[0]
    hmtx = table(b"hmtx")
    advances = [struct.unpack(">H", hmtx[4 * i : 4 * i + 2])[0] for i in range(metrics)]
    raw_loca = table(b"loca")
    if long_loca:
        loca = list(struct.unpack(f">{glyphs + 1}I", raw_loca[: 4 * (glyphs + 1)]))
    else:
        loca = [2 * v for v in struct.unpack(f">{glyphs + 1}H", raw_loca[: 2 * (glyphs + 1)])]
    cap_height = ascent
    if b"OS/2" in tables:
        os2 = table(b"OS/2")
        if len(os2) >= 90 and struct.unpack(">H", os2[:2])[0] >= 2:
            cap_height = struct.unpack(">h", os2[88:90])[0]
    cmap = _cmap(table(b"cmap"), name) if b"cmap" in tables else {}
    return TrueType(
        name, data, tables, units, cmap, advances, loca, bbox, ascent, descent, cap_height
    )


def _cmap(cmap: bytes, name: str) -> dict[int, int]:
    """Unicode code point -> glyph, from the format 12 subtable if any, else format 4."""
    count = struct.unpack(">H", cmap[2:4])[0]
    found: dict[int, int] = {}
    best = None
    for i in range(count):
        platform, encoding, offset = struct.unpack(">HHI", cmap[4 + 8 * i : 12 + 8 * i])
        kind = struct.unpack(">H", cmap[offset : offset + 2])[0]
        unicode = platform == 0 or (platform == 3 and encoding in (1, 10))
        if unicode and kind == 12:
            best = (12, offset)
        elif unicode and kind == 4 and best is None:
            best = (4, offset)
    if best is None:
        raise FontError(f"{name}: no Unicode character map")
    kind, at = best
    if kind == 12:
        groups = struct.unpack(">I", cmap[at + 12 : at + 16])[0]
        for g in range(groups):
            start, end, glyph = struct.unpack(">III", cmap[at + 16 + 12 * g : at + 28 + 12 * g])
            for code in range(start, end + 1):
                found[code] = glyph + code - start
        return found
    segments = struct.unpack(">H", cmap[at + 6 : at + 8])[0] // 2
    ends = struct.unpack(f">{segments}H", cmap[at + 14 : at + 14 + 2 * segments])
    base = at + 16 + 2 * segments
    starts = struct.unpack(f">{segments}H", cmap[base : base + 2 * segments])
    deltas = struct.unpack(f">{segments}h", cmap[base + 2 * segments : base + 4 * segments])
    ranges_at = base + 4 * segments
    ranges = struct.unpack(f">{segments}H", cmap[ranges_at : ranges_at + 2 * segments])
    for s in range(segments):
        for code in range(starts[s], ends[s] + 1):
            if code == 0xFFFF:
                continue
            if ranges[s] == 0:
                glyph = (code + deltas[s]) & 0xFFFF
            else:
                where = ranges_at + 2 * s + ranges[s] + 2 * (code - starts[s])
                glyph = struct.unpack(">H", cmap[where : where + 2])[0]
                glyph = (glyph + deltas[s]) & 0xFFFF if glyph else 0
            if glyph:
                found[code] = glyph
    return found


@cache
def font(file_name: str) -> TrueType:
    """A vendored font, read once per process."""
    return parse((FONT_DIR / file_name).read_bytes(), Path(file_name).stem.replace("-", ""))


class Widths(dict[str, float]):
    """Advance of each character in thousandths of the em, in the font that draws it."""

    def __init__(self, primary: str) -> None:
        super().__init__()
        self.primary = primary
        # The widest printable ASCII character: an ASCII text no longer than a line holds of
        # these fits without measuring (most do).
        self.ascii_widest = max(self[chr(c)] for c in range(0x20, 0x7F))

    def __missing__(self, char: str) -> float:
        value = float(font(drawn_by(self.primary, char)).width(glyph_of(self.primary, char)))
        self[char] = value
        return value

    def measure(self, text: str) -> float:
        return sum(map(self.__getitem__, text))


def drawn_by(primary: str, char: str) -> str:
    """The font that draws ``char``: the primary if it can, else the fallback if it can."""
    code = ord(char)
    if code in font(primary).cmap or code < 0x80:
        return primary
    return FALLBACK if code in font(FALLBACK).cmap else primary


@cache
def _repertoire(file_name: str) -> frozenset[str]:
    return frozenset(map(chr, font(file_name).cmap))


def drawn_alone(primary: str, text: str) -> bool:
    """Whether ``primary`` draws every character of ``text`` (one run, no fallback)."""
    return _repertoire(primary).issuperset(text)


def glyph_of(primary: str, char: str) -> int:
    return font(drawn_by(primary, char)).cmap.get(ord(char), 0)


@cache
def widths(primary: str) -> Widths:
    return Widths(primary)


# Every subset of the two DejaVu faces holds printable ASCII whether used or not: most
# documents then need no other glyph, share one subset, and it is built once per process.
BASE = frozenset(chr(c) for c in range(0x20, 0x7F))


class Subset:
    """The glyphs one PDF draws with one font file. A character's CID is its code point (all
    are in the Basic Multilingual Plane: ``layout.drawable`` escapes the others), so text is
    encoded by one C call; ``glyph_map`` (the PDF's CIDToGIDMap) sends each CID to the subset's
    glyph, the glyphs kept in the order of their numbers in the font (0 is .notdef)."""

    def __init__(self, file_name: str, glyphs: tuple[int, ...], chars: dict[str, int]) -> None:
        self.file_name = file_name
        self.font = font(file_name)
        self.glyphs = glyphs  # new glyph -> original glyph, ascending, glyphs[0] == 0
        new_of = {g: i for i, g in enumerate(glyphs)}
        # CID (code point) -> new glyph, ascending by CID; .notdef for a character it lacks
        self.cids = sorted((ord(char), new_of[g]) for char, g in chars.items())
        self.chars = frozenset(chars)
        self.pdf_objects: dict[int, list[bytes]] = {}  # by first object number, see pdf.py

    @staticmethod
    def encode(text: str) -> str:
        """``text`` as the hex of its two-byte CIDs, its UTF-16 code units."""
        return text.encode("utf-16-be").hex()

    def widths(self) -> list[tuple[int, int]]:
        """(CID, width in thousandths of the em) of every character, ascending."""
        return [(cid, self.font.width(self.glyphs[new])) for cid, new in self.cids]

    def glyph_map(self) -> bytes:
        """CIDToGIDMap: two bytes per CID from 0 to the highest, the glyph it is drawn with."""
        top = self.cids[-1][0] if self.cids else 0
        table = bytearray(2 * (top + 1))
        for cid, new in self.cids:
            struct.pack_into(">H", table, 2 * cid, new)
        return bytes(table)

    def tag(self) -> str:
        """Six capital letters naming this subset (PDF 32000-1 §9.6.4), from its glyphs."""
        digest = hashlib.sha256(struct.pack(f">{len(self.glyphs)}I", *self.glyphs)).digest()
        return "".join(chr(65 + b % 26) for b in digest[:6])

    def font_file(self) -> bytes:
        """A TrueType file holding the glyphs, renumbered so that glyph = CID, followed by the
        components of composite glyphs."""
        order = list(self.glyphs)
        new_of = {g: i for i, g in enumerate(order)}
        outlines: list[bytes] = []
        i = 0
        while i < len(order):  # the list grows as composites bring in their components
            outline = self.font.glyph(order[i])
            parts = components(outline)
            if parts:
                patched = bytearray(outline)
                for at, old in parts:
                    if old not in new_of:
                        new_of[old] = len(order)
                        order.append(old)
                    struct.pack_into(">H", patched, at, new_of[old])
                outline = bytes(patched)
            outlines.append(outline + b"\0" * (-len(outline) % 4))
            i += 1
        return _font_file(self.font, order, outlines)


_SUBSETS: dict[tuple[str, frozenset[str]], Subset] = {}
SUBSET_CACHE = 512  # subsets kept per process; beyond that the cache starts again


def subset(file_name: str, chars: set[str]) -> Subset:
    """The subset of ``file_name`` drawing ``chars`` (and ``BASE`` for the DejaVu faces),
    shared by every document that draws the same characters with it."""
    key = (file_name, frozenset(chars if file_name == FALLBACK else chars | BASE))
    found = _SUBSETS.get(key)
    if found is None:
        cmap = font(file_name).cmap
        mapped = {c: cmap.get(ord(c), 0) for c in key[1]}
        if len(_SUBSETS) >= SUBSET_CACHE:
            _SUBSETS.clear()
        found = _SUBSETS[key] = Subset(file_name, tuple(sorted({0, *mapped.values()})), mapped)
    return found


def _font_file(source: TrueType, order: list[int], outlines: list[bytes]) -> bytes:
    count = len(order)
    offsets = [0]
    for outline in outlines:
        offsets.append(offsets[-1] + len(outline))
    head = bytearray(source.table(b"head"))
    struct.pack_into(">I", head, 8, 0)  # checkSumAdjustment: left 0, viewers do not check it
    struct.pack_into(">h", head, 50, 1)  # long loca offsets
    hhea = bytearray(source.table(b"hhea"))
    struct.pack_into(">H", hhea, 34, count)
    maxp = bytearray(source.table(b"maxp"))
    struct.pack_into(">H", maxp, 4, count)
    hmtx = b"".join(
        struct.pack(">Hh", source.advances[min(g, len(source.advances) - 1)], _lsb(source, g))
        for g in order
    )
    tables = {
        b"glyf": b"".join(outlines),
        b"head": bytes(head),
        b"hhea": bytes(hhea),
        b"hmtx": hmtx,
        b"loca": struct.pack(f">{count + 1}I", *offsets),
        b"maxp": bytes(maxp),
        b"post": struct.pack(">IIhhIIIII", 0x00030000, 0, 0, 0, 0, 0, 0, 0, 0),
    }
    return _sfnt(tables)


def _lsb(source: TrueType, glyph: int) -> int:
    offset, _length = source.tables[b"hmtx"]
    metrics = len(source.advances)
    # Past the last long metric, only the left side bearings follow, two bytes each.
    at = offset + 4 * glyph + 2 if glyph < metrics else offset + 4 * metrics + 2 * (glyph - metrics)
    return struct.unpack(">h", source.data[at : at + 2])[0]


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def _sfnt(tables: dict[bytes, bytes]) -> bytes:
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, 16 * power, power.bit_length() - 1,
                         16 * count - 16 * power)  # fmt: skip
    directory, body = [], []
    offset = 12 + 16 * count
    for tag in sorted(tables):
        data = tables[tag]
        directory.append(struct.pack(">4sIII", tag, _checksum(data), offset, len(data)))
        padded = data + b"\0" * (-len(data) % 4)
        body.append(padded)
        offset += len(padded)
    return header + b"".join(directory) + b"".join(body)
