"""PDF renderings: each page carries a two-line header and, bottom right, its Bates number.

A small PDF 1.4 writer rather than a layout library: rows arrive laid out (``layout``) and
measured, so a page is a few text objects placed where the rows say. fpdf2 spent about 1.7 ms a
page and 1 ms a file on its general machinery, three times the 15 s budget for 100,000 entries
(bench/review.py), and its font subsetting (fontTools) tens of milliseconds more a file.

Text in any script: the vendored TrueType fonts (``fonts``) are embedded as subsets, one
``Type0`` font with Identity-H encoding per font file used. A CID is the character's code point,
so encoding a string is one C call (``str.encode``), whatever the subset; a CIDToGIDMap sends
each CID to its glyph in the subset, and a ToUnicode map lets the text be searched and copied.
A character DejaVu Sans lacks is drawn from Droid Sans Fallback.

Every file has the same shape (docs/REVIEW_FILES.md, "PDF renderings"): catalog, page tree, info
dictionary, one shared resource dictionary, six objects per font used (Type0 font,
CIDFontType2, descriptor, font file, ToUnicode, CIDToGIDMap), then a page object and a
Flate-compressed content stream per page, a cross-reference table and a trailer. The creation
date is the production's time and subsets are named from their glyphs, so the same input gives
the same bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from legal_hold.review.fonts import (
    BOLD,
    FALLBACK,
    REGULAR,
    Subset,
    drawn_alone,
    drawn_by,
    subset,
)
from legal_hold.review.layout import (
    HEAD,
    LEADING,
    MARGIN,
    PAGE_HEIGHT,
    PAGE_WIDTH,
    SMALL,
    STYLES,
    Row,
    fit,
    text_width,
)

BODY_TOP = PAGE_HEIGHT - 86  # baseline of the first row, from the bottom of the page
HEADER_WIDTH = PAGE_WIDTH - 2 * MARGIN - 70  # leaves room for "Page n of m"
RESOURCE_NAMES = {REGULAR: "F1", BOLD: "F2", FALLBACK: "F3"}

# Object numbers: fixed objects first, then six per font used, then (page, contents) pairs.
CATALOG, PAGES, INFO, RESOURCES = 1, 2, 3, 4
FIRST_FONT = 5
FONT_OBJECTS = 6

__all__ = ["HEADER_WIDTH", "Frame", "fit", "render"]


@dataclass(frozen=True)
class Frame:
    """What every page of one rendering repeats: two header lines and a footer."""

    heading: str
    title: str
    footer: str
    creator: str
    created: datetime


class _Fonts:
    """The characters one PDF draws with each font file; text is encoded as it is drawn (a
    CID is the character's code point), and the subsets are picked once all is drawn."""

    def __init__(self) -> None:
        self.chars: dict[str, set[str]] = {}

    def show(self, style: int, x: float, y: float, text: str) -> str:
        """A text object drawing ``text`` in ``style`` with its baseline starting at (x, y)."""
        primary, gray, sizes = _OPS[style]
        if text.isascii():  # every subset of the DejaVu faces holds printable ASCII
            if primary not in self.chars:
                self.chars[primary] = set()
            hexes = text.encode("utf-16-be").hex()
            return f"BT {gray} {x:.2f} {y:.2f} Td {sizes[primary]} <{hexes}> Tj ET"
        ops = [f"BT {gray} {x:.2f} {y:.2f} Td"]
        for file_name, run in _runs(primary, text):
            self.chars.setdefault(file_name, set()).update(run)
            ops.append(f"{sizes[file_name]} <{Subset.encode(run)}> Tj")
        ops.append("ET")
        return " ".join(ops)

    def subsets(self) -> dict[str, Subset]:
        return {name: subset(name, chars) for name, chars in self.chars.items()}


# Per style: its primary font file, its fill operator, and its "/Fn size Tf" per font file.
_OPS = {
    style: (primary, f"{gray:g} g", {f: f"/{n} {size:g} Tf" for f, n in RESOURCE_NAMES.items()})
    for style, (primary, size, gray) in STYLES.items()
}
_RUN_FONT: dict[tuple[str, str], str] = {}


def _runs(primary: str, text: str) -> list[tuple[str, str]]:
    """``text`` cut into runs each drawn by one font file."""
    if text.isascii() or drawn_alone(primary, text):
        return [(primary, text)]
    runs: list[tuple[str, str]] = []
    current, start = "", 0
    for i, char in enumerate(text):
        key = (primary, char)
        file_name = _RUN_FONT.get(key)
        if file_name is None:
            file_name = _RUN_FONT[key] = drawn_by(primary, char)
        if file_name != current:
            if i > start:
                runs.append((current, text[start:i]))
            current, start = file_name, i
    runs.append((current, text[start:]))
    return runs


def render(pages: Sequence[Sequence[Row]], labels: Sequence[str], frame: Frame) -> bytes:
    """A PDF of ``pages``, page i stamped with ``labels[i]`` (its Bates number)."""
    if len(pages) != len(labels) or not pages:
        raise ValueError(f"{len(pages)} pages but {len(labels)} Bates numbers")
    total = len(pages)
    fonts = _Fonts()
    contents = [
        # Level 1: at level 6 compressing took a third of the writing time, for a few percent.
        zlib.compress(_content(fonts, rows, bates, frame, f"Page {i + 1} of {total}"), 1)
        for i, (rows, bates) in enumerate(zip(pages, labels, strict=True))
    ]
    subsets = fonts.subsets()
    used = [name for name in (REGULAR, BOLD, FALLBACK) if name in subsets]
    first_page = FIRST_FONT + FONT_OBJECTS * len(used)
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(total))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {total} >>".encode())
    objects.append(_info(frame))
    refs = " ".join(
        f"/{RESOURCE_NAMES[name]} {FIRST_FONT + FONT_OBJECTS * i} 0 R"
        for i, name in enumerate(used)
    )
    objects.append(f"<< /Font << {refs} >> /ProcSet [/PDF /Text] >>".encode())
    for i, name in enumerate(used):  # a fixed order: the same input gives the same bytes
        objects += _font_objects(subsets[name], FIRST_FONT + FONT_OBJECTS * i)
    for i, content in enumerate(contents):
        number = first_page + 2 * i
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources {RESOURCES} 0 R /Contents {number + 1} 0 R >>".encode()
        )
        objects.append(_stream(content, b"/Filter /FlateDecode"))
    return _file(objects)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s >>\nstream\n%s\nendstream" % (len(data), extra, data)


def _font_objects(subset: Subset, first: int) -> list[bytes]:
    """Type0 font, its CIDFontType2, descriptor, font file and ToUnicode map, numbered from
    ``first``; made once per subset and number, as documents share subsets."""
    found = subset.pdf_objects.get(first)
    if found is None:
        found = subset.pdf_objects[first] = _make_font_objects(subset, first)
    return found


def _make_font_objects(subset: Subset, first: int) -> list[bytes]:
    source = subset.font
    name = f"{subset.tag()}+{source.name}"
    cid_font, descriptor, font_file, to_unicode, glyph_map = (first + i for i in range(1, 6))
    widths = " ".join(f"{cid} [{w}]" for cid, w in subset.widths())
    raw = subset.font_file()
    x0, y0, x1, y1 = (source.scaled(v) for v in source.bbox)
    return [
        (
            f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
            f"/DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>"
        ).encode(),
        (
            f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} /CIDSystemInfo "
            "<< /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
            f"/FontDescriptor {descriptor} 0 R /DW 1000 /W [{widths}] "
            f"/CIDToGIDMap {glyph_map} 0 R >>"
        ).encode(),
        (
            f"<< /Type /FontDescriptor /FontName /{name} /Flags 4 "
            f"/FontBBox [{x0} {y0} {x1} {y1}] /ItalicAngle 0 "
            f"/Ascent {source.scaled(source.ascent)} /Descent {source.scaled(source.descent)} "
            "/CapHeight "
            f"{source.scaled(source.cap_height)} /StemV 80 /FontFile2 {font_file} 0 R >>"
        ).encode(),
        _stream(zlib.compress(raw, 9), b"/Length1 %d /Filter /FlateDecode" % len(raw)),
        _stream(zlib.compress(_cmap(subset.cids), 9), b"/Filter /FlateDecode"),
        _stream(zlib.compress(subset.glyph_map(), 9), b"/Filter /FlateDecode"),
    ]


def _cmap(cids: Sequence[tuple[int, int]]) -> bytes:
    """The ToUnicode CMap: each CID but .notdef's to the character it is (its code point)."""
    pairs = [f"<{cid:04X}> <{cid:04X}>" for cid, new in cids if new]
    blocks = []
    for start in range(0, len(pairs), 100):  # at most 100 mappings to a block
        chunk = pairs[start : start + 100]
        blocks.append(f"{len(chunk)} beginbfchar\n" + "\n".join(chunk) + "\nendbfchar")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")


def _info(frame: Frame) -> bytes:
    created = frame.created.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")
    return (
        f"<< /Title {_text_string(frame.title)} /Creator {_text_string(frame.creator)} "
        f"/Producer {_text_string(frame.creator)} /CreationDate ({created}) >>"
    ).encode()


def _text_string(text: str) -> str:
    """A PDF text string of any Unicode text: UTF-16BE with a byte-order mark, in hex."""
    return "<FEFF" + text.encode("utf-16-be", errors="replace").hex().upper() + ">"


def _right(text: str, style: int) -> float:
    return PAGE_WIDTH - MARGIN - text_width(text, style)


def _content(fonts: _Fonts, rows: Sequence[Row], bates: str, frame: Frame, page_of: str) -> bytes:
    top, bottom = PAGE_HEIGHT - 36, 36
    parts = [
        fonts.show(HEAD, MARGIN, top, frame.heading),
        fonts.show(HEAD, _right(page_of, HEAD), top, page_of),
        fonts.show(SMALL, MARGIN, top - 12, frame.title),
        f"0.5 w {MARGIN} {top - 18} m {PAGE_WIDTH - MARGIN} {top - 18} l S",
    ]
    y = BODY_TOP
    for row in rows:
        parts.extend(fonts.show(style, MARGIN + x, y, text) for style, x, text in row if text)
        y -= LEADING
    parts += [
        f"0.5 w {MARGIN} {bottom + 14} m {PAGE_WIDTH - MARGIN} {bottom + 14} l S",
        fonts.show(SMALL, MARGIN, bottom, frame.footer),
        fonts.show(HEAD, _right(bates, HEAD), bottom, bates),
    ]
    return "\n".join(parts).encode("ascii")


def _file(objects: list[bytes]) -> bytes:
    """Header, numbered objects, cross-reference table (offsets of each object) and trailer."""
    out = [b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"]
    offset = len(out[0])
    offsets = []
    for number, body in enumerate(objects, start=1):
        chunk = b"%d 0 obj\n%s\nendobj\n" % (number, body)
        offsets.append(offset)
        offset += len(chunk)
        out.append(chunk)
    size = len(objects) + 1
    xref = [b"xref\n0 %d\n0000000000 65535 f \n" % size]
    xref += [b"%010d 00000 n \n" % at for at in offsets]
    out += xref
    out.append(
        b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (size, CATALOG, INFO, offset)
    )
    return b"".join(out)
