"""PDF renderings: each page carries a two-line header and, bottom right, its Bates number.

A small PDF 1.4 writer rather than a layout library: text arrives laid out (``layout``) and
drawable (``winansi``), so a page is one text object of ``T*``-separated lines in the standard
Courier font, and nothing needs measuring. fpdf2 spent about 1.7 ms a page and 1 ms a file on
its general machinery, three times the 15 s budget for 100,000 entries (bench/review.py).

Every file has the same shape (docs/REVIEW_FILES.md, "PDF renderings"): catalog, page tree,
two Type 1 standard fonts (Courier, Courier-Bold) with WinAnsiEncoding, an info dictionary, one
shared resource dictionary, then a page object and a Flate-compressed content stream per page,
a cross-reference table and a trailer. The creation date is the production's time, so the same
input gives the same bytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from legal_hold.review.layout import Line
from legal_hold.review.winansi import to_winansi

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
MARGIN = 54
BODY_TOP = 720  # baseline of the first body line, from the bottom of the page
LEADING = 9.6
BODY_SIZE = 8
HEADER_SIZE = 9
BATES_SIZE = 10
COURIER_ADVANCE = 0.6  # every Courier glyph is 600/1000 of the font size wide
HEADER_CHARS = 80  # Courier-Bold 9 pt between the margins, leaving room for "Page n of m"

# Object numbers: fixed objects first, then a (page, contents) pair per page.
CATALOG, PAGES, BODY_FONT, BOLD_FONT, INFO, RESOURCES = 1, 2, 3, 4, 5, 6
FIRST_PAGE = 7


@dataclass(frozen=True)
class Frame:
    """What every page of one rendering repeats: two header lines and a footer."""

    heading: str
    title: str
    footer: str
    creator: str
    created: datetime


def fit(text: str, chars: int = HEADER_CHARS) -> str:
    """One header line: drawable, shortened with '...' if it would run into the page number."""
    text = to_winansi(" ".join(text.split()))
    return text if len(text) <= chars else text[: chars - 3] + "..."


def render(pages: Sequence[Sequence[Line]], labels: Sequence[str], frame: Frame) -> bytes:
    """A PDF of ``pages``, page i stamped with ``labels[i]`` (its Bates number)."""
    if len(pages) != len(labels) or not pages:
        raise ValueError(f"{len(pages)} pages but {len(labels)} Bates numbers")
    total = len(pages)
    objects: list[bytes] = [b""] * (FIRST_PAGE - 1 + 2 * total)
    kids = " ".join(f"{FIRST_PAGE + 2 * i} 0 R" for i in range(total))
    objects[CATALOG - 1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[PAGES - 1] = f"<< /Type /Pages /Kids [{kids}] /Count {total} >>".encode()
    objects[BODY_FONT - 1] = _font("Courier")
    objects[BOLD_FONT - 1] = _font("Courier-Bold")
    objects[INFO - 1] = _info(frame)
    objects[RESOURCES - 1] = b"<< /Font << /F1 3 0 R /F2 4 0 R >> /ProcSet [/PDF /Text] >>"
    for i, (lines, bates) in enumerate(zip(pages, labels, strict=True)):
        page_number = FIRST_PAGE + 2 * i
        content = zlib.compress(_content(lines, bates, frame, f"Page {i + 1} of {total}"))
        objects[page_number - 1] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
            f"/Resources 6 0 R /Contents {page_number + 1} 0 R >>"
        ).encode()
        objects[page_number] = (
            f"<< /Length {len(content)} /Filter /FlateDecode >>\nstream\n".encode()
            + content
            + b"\nendstream"
        )
    return _file(objects)


def _font(name: str) -> bytes:
    return (
        f"<< /Type /Font /Subtype /Type1 /BaseFont /{name} /Encoding /WinAnsiEncoding >>".encode()
    )


def _info(frame: Frame) -> bytes:
    created = frame.created.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")
    return (
        f"<< /Title {_text_string(frame.title)} /Creator {_text_string(frame.creator)} "
        f"/Producer {_text_string(frame.creator)} /CreationDate ({created}) >>"
    ).encode()


def _text_string(text: str) -> str:
    """A PDF text string of any Unicode text: UTF-16BE with a byte-order mark, in hex."""
    return "<FEFF" + text.encode("utf-16-be", errors="replace").hex().upper() + ">"


def _show(text: str) -> str:
    """Show a string: backslash and parentheses escaped (three replaces beat a translate)."""
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") Tj"


def _right(text: str, size: float) -> float:
    return PAGE_WIDTH - MARGIN - len(text) * size * COURIER_ADVANCE


def _content(lines: Sequence[Line], bates: str, frame: Frame, page_of: str) -> bytes:
    top, bottom = PAGE_HEIGHT - 36, 36
    parts = [
        f"BT /F2 {HEADER_SIZE} Tf {MARGIN} {top} Td {_show(frame.heading)} ET",
        f"BT /F2 {HEADER_SIZE} Tf {_right(page_of, HEADER_SIZE):.2f} {top} Td {_show(page_of)} ET",
        f"BT /F2 {BODY_SIZE} Tf {MARGIN} {top - 12} Td {_show(frame.title)} ET",
        f"0.5 w {MARGIN} {top - 18} m {PAGE_WIDTH - MARGIN} {top - 18} l S",
        f"BT /F1 {BODY_SIZE} Tf {LEADING} TL {MARGIN} {BODY_TOP} Td",
    ]
    # The first line is shown where Td put it; every later one after a T* (next line).
    body = [_show(text) if text else "" for _style, text in lines]
    parts.append("\nT* ".join(body) + " ET")
    parts += [
        f"0.5 w {MARGIN} {bottom + 14} m {PAGE_WIDTH - MARGIN} {bottom + 14} l S",
        f"BT /F1 7 Tf {MARGIN} {bottom} Td {_show(frame.footer)} ET",
        f"BT /F2 {BATES_SIZE} Tf {_right(bates, BATES_SIZE):.2f} {bottom} Td {_show(bates)} ET",
    ]
    return "\n".join(parts).encode("cp1252")


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
