"""How a timeline falls into rows and pages: pure, so page counts (and Bates numbers) are known
before anything is drawn.

A page is a list of rows; a row is one or more cells ``(style, x, text)`` on one baseline, ``x``
in points from the left margin and ``text`` drawable by the vendored fonts (``drawable``). Text
is wrapped by its measured width at spaces (a word longer than a line is cut).

A chart reads as a chart: its title, the patient's demographics, then each section in the order
the entries give them ("Problems", "Medications", "Allergies", "Lab results", "Notes", ...).
A section named in ``Timeline.columns`` is a table (lab results: value, unit, range and flag as
received), one row per entry; any other entry is a block: what it is and who did it, its ledger
position and times, then its text. Every entry shows its ledger position. A block running onto
a new page repeats its position first; a table repeats its column headings. A withheld entry
shows why, never its text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from itertools import accumulate

from legal_hold.review.fonts import BOLD, FALLBACK, REGULAR, font, widths
from legal_hold.review.items import Native, Timeline, TimelineEntry

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, in points
MARGIN = 54
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN
LEADING = 11.5
LINES_PER_PAGE = 55
INDENT = 12.0

# Styles: (font file, size in points, gray level of the text).
TITLE, SECTION, HEAD, BODY, NOTE, SMALL, LABEL, CELL = range(8)
STYLES = {
    TITLE: (BOLD, 12.0, 0.0),
    SECTION: (BOLD, 10.0, 0.0),
    HEAD: (BOLD, 8.5, 0.0),
    BODY: (REGULAR, 8.5, 0.0),
    NOTE: (REGULAR, 8.0, 0.35),
    SMALL: (REGULAR, 7.0, 0.4),
    LABEL: (BOLD, 7.5, 0.25),
    CELL: (REGULAR, 7.5, 0.0),
}
Cell = tuple[int, float, str]
Row = tuple[Cell, ...]
BLANK: Row = ()

WITHHELD_NOTICE = {
    "privileged": "[WITHHELD AS PRIVILEGED: listed in the privilege log at ledger position {p}]",
    "out of scope": "[WITHHELD: outside the scope of this production]",
    "disposed": "[DISPOSED OF under the retention policy before this production: no content]",
    "security credential": (
        "[WITHHELD: security credential, not produced: listed in the privilege log at ledger "
        "position {p}]"
    ),
}
# Withheld entries with a row in the privilege log, whose page its Placeholder Bates names.
LOGGED = ("privileged", "security credential")


class _Drawable(dict[int, str]):
    """``str.translate`` table: a character some vendored font draws to itself; a control
    character, or one no font has, to ``[U+XXXX]`` (its code point), worked out once."""

    def __missing__(self, code: int) -> str:
        # Beyond the Basic Multilingual Plane a character would need two CIDs (fonts.Subset).
        drawn = 0x20 <= code <= 0xFFFF and not 0x7F <= code <= 0x9F
        if drawn and code >= 0x80:
            drawn = code in font(REGULAR).cmap or code in font(FALLBACK).cmap
        self[code] = chr(code) if drawn else f"[U+{code:04X}]"
        return self[code]


_DRAWABLE = _Drawable()


@cache
def _undrawable() -> re.Pattern[str]:
    """A character no vendored font draws (or a control): what ``drawable`` must escape. One
    regular-expression scan finds whether a text has any, far faster than translating it."""
    codes = sorted(
        {c for c in (*font(REGULAR).cmap, *font(FALLBACK).cmap) if 0xA0 <= c <= 0xFFFF}
        | set(range(0x20, 0x7F))
    )
    ranges, start, last = [], codes[0], codes[0]
    for code in codes[1:]:
        if code != last + 1:
            ranges.append((start, last))
            start = code
        last = code
    ranges.append((start, last))
    allowed = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return re.compile(f"[^{allowed}]")


def drawable(text: str) -> str:
    """``text`` as the renderings can draw it (the text files keep it exactly)."""
    if text.isascii() and text.isprintable():
        return text
    if not _undrawable().search(text):
        return text
    return text.translate(_DRAWABLE)


_WIDTHS: dict[tuple[str, int], float] = {}


def text_width(text: str, style: int) -> float:
    """``text``'s width in points (remembered: table cells and page labels recur)."""
    found = _WIDTHS.get((text, style))
    if found is None:
        file_name, size, _gray = STYLES[style]
        found = widths(file_name).measure(text) * size / 1000
        if len(text) <= CACHED_CHARS:
            if len(_WIDTHS) >= WRAP_CACHE:
                _WIDTHS.clear()
            _WIDTHS[(text, style)] = found
    return found


_WRAPPED: dict[tuple[str, float, int], list[str]] = {}
# Short texts recur (headings, names, units, ranges, flags): their wrapping and widths are
# kept, at most WRAP_CACHE of each (a few megabytes), texts of at most CACHED_CHARS.
WRAP_CACHE = 50_000
CACHED_CHARS = 120


def wrap(text: str, width: float, style: int = BODY) -> list[str]:
    """``text`` (one line) in pieces no wider than ``width`` points, broken at spaces (the
    space is dropped) or, in a word wider than a line, between characters."""
    if len(text) > CACHED_CHARS:  # a paragraph of a note: rarely seen twice
        return _wrap(text, width, style)
    key = (text, width, style)
    found = _WRAPPED.get(key)
    if found is None:
        if len(_WRAPPED) >= WRAP_CACHE:
            _WRAPPED.clear()
        found = _WRAPPED[key] = _wrap(text, width, style)
    return found  # callers only read it


def _wrap(text: str, width: float, style: int) -> list[str]:
    file_name, size, _gray = STYLES[style]
    measure = widths(file_name)
    limit = width * 1000 / size
    if len(text) * measure.ascii_widest <= limit and text.isascii():
        return [text]
    if measure.measure(text) <= limit:
        return [text]
    # widths[i]: the width of text[:i], summed once; each line is then a bisection.
    edges = list(accumulate(map(measure.__getitem__, text), initial=0.0))
    pieces: list[str] = []
    begin, size_ = 0, len(text)
    while edges[size_] - edges[begin] > limit:
        end = bisect_right(edges, edges[begin] + limit, lo=begin) - 1  # text[begin:end] fits
        cut = text.rfind(" ", begin, end + 1)
        if cut <= begin:  # no space to break at: cut the word (at least one character)
            end = max(end, begin + 1)
            pieces.append(text[begin:end])
            begin = end
        else:
            pieces.append(text[begin:cut])
            begin = cut + 1
    pieces.append(text[begin:])
    return pieces


def fit(text: str, width: float, style: int) -> str:
    """One line: drawable, shortened with '…' if wider than ``width`` points."""
    text = drawable(" ".join(text.split()))
    if text_width(text, style) <= width:
        return text
    while text and text_width(text + "…", style) > width:
        text = text[:-1]
    return text + "…"


def _lines(style: int, text: str, x: float = 0.0) -> list[Row]:
    rows = []
    for paragraph in text.splitlines() or [""]:
        for piece in wrap(drawable(paragraph.expandtabs(4)), CONTENT_WIDTH - x, style):
            rows.append(((style, x, piece),))
    return rows


@dataclass
class LaidOut:
    """A timeline's pages and, for the position of each entry listed in the privilege log
    (``LOGGED``), the page index it is on."""

    pages: list[list[Row]]
    privileged_on_page: dict[int, int]


def notice(entry: TimelineEntry) -> str:
    assert entry.withheld is not None
    text = WITHHELD_NOTICE.get(entry.withheld, "[WITHHELD: {w}]")
    return text.format(p=entry.position, w=entry.withheld)


def entry_rows(entry: TimelineEntry) -> list[Row]:
    """An entry as a block: heading, its ledger position and times, then its text."""
    by = f" — entered by {entry.actor}" if entry.actor else ""
    rows = _lines(HEAD, f"{entry.kind}{by}")
    # ASCII separators: most such lines then fit without being measured (``wrap``).
    when = f"ledger position {entry.position}, recorded {entry.recorded}"
    if entry.original:
        when += f"; {entry.original_label}: {entry.original}"
    rows += _lines(SMALL, when)
    if entry.withheld is not None:
        return rows + _lines(NOTE, notice(entry), INDENT)
    return rows + _lines(BODY, entry.text, INDENT)


def _column_x(names: Sequence[str], rows: Sequence[Sequence[str]]) -> list[float]:
    """Left edges of the columns: each as wide as its widest cell or heading (plus a gap),
    wide columns narrowed in proportion when the table would not fit the page."""
    natural = [text_width(name, LABEL) + 8 for name in names]
    for row in rows:
        for i, cell in enumerate(row[: len(names)]):
            natural[i] = max(natural[i], text_width(cell, CELL) + 8)
    natural = [min(w, CONTENT_WIDTH / 2) for w in natural]
    scale = min(1.0, CONTENT_WIDTH / sum(natural))
    edges, at = [], 0.0
    for width in natural:
        edges.append(at)
        at += width * scale
    return edges


def table_rows(entry: TimelineEntry, edges: Sequence[float]) -> list[Row]:
    """An entry as table rows: each cell wrapped to its column (the last is its position)."""
    if entry.withheld is not None:
        first = (CELL, 0.0, f"{entry.kind} ({entry.recorded[:10]})")
        return [(first, (CELL, edges[-1], str(entry.position))), *_lines(NOTE, notice(entry))]
    cells = [*entry.row[: len(edges) - 1]]
    cells += [""] * (len(edges) - 1 - len(cells)) + [str(entry.position)]
    bounds = [*edges[1:], CONTENT_WIDTH]
    wrapped = [
        wrap(drawable(" ".join(cell.split())), bounds[i] - edges[i] - 4, CELL)
        for i, cell in enumerate(cells)
    ]
    height = max(len(w) for w in wrapped)
    return [
        tuple((CELL, edges[i], w[line]) for i, w in enumerate(wrapped) if line < len(w) and w[line])
        for line in range(height)
    ]


class _Pages:
    def __init__(self, lines_per_page: int) -> None:
        self.pages: list[list[Row]] = [[]]
        self.size = lines_per_page

    def place(self, rows: list[Row], again: list[Row]) -> int:
        """Put ``rows`` on the pages, starting a short block on a fresh page rather than split
        it; on each new page of a split block ``again`` comes first. The page index it starts."""
        page = self.pages[-1]
        if page and len(page) + len(rows) > self.size and len(rows) < self.size // 4:
            page = self._new()
        start = len(self.pages) - 1
        for i, row in enumerate(rows):
            if len(page) >= self.size:
                page = self._new()
                if i:
                    page.extend(again)
            page.append(row)
        return start

    def _new(self) -> list[Row]:
        self.pages.append([])
        return self.pages[-1]


def layout(timeline: Timeline, lines_per_page: int = LINES_PER_PAGE) -> LaidOut:
    """Every entry of ``timeline`` in order, on pages of at most ``lines_per_page`` rows."""
    if lines_per_page < 8:  # a title, a table heading and a continued row need room
        raise ValueError("a page needs room for at least eight rows")
    pages = _Pages(lines_per_page)
    privileged: dict[int, int] = {}
    top = _lines(TITLE, timeline.title)
    for label, value in timeline.header:
        top += _facts(label, value)
    if timeline.reference:
        top += _lines(SMALL, f"Ledger reference: {timeline.reference}")
    pages.place([*top, BLANK], [])
    tables = dict(timeline.columns)
    section = None
    edges: list[float] = []
    heading: list[Row] = []
    pending: list[Row] = []
    for entry in timeline.entries:
        if entry.section != section:
            section = entry.section
            columns = tables.get(section)
            edges, heading = [], []
            if columns:  # the last column is every table's: the ledger position
                names = (*columns, "Ledger position")
                mine = [e for e in timeline.entries if e.section == section]
                cells = [(*e.row, str(e.position)) for e in mine]
                edges = _column_x(names, cells)
                bounds = [*edges[1:], CONTENT_WIDTH]
                heading = [
                    tuple(
                        (LABEL, x, fit(n, bounds[i] - x - 4, LABEL))
                        for i, (x, n) in enumerate(zip(edges, names, strict=True))
                    )
                ]
            # A section's heading goes with its first entry, never alone at a page's foot.
            pending = [BLANK, *_lines(SECTION, section), *heading] if section else []
        if edges:
            rows = table_rows(entry, edges)
            again = heading
        else:
            rows = [*entry_rows(entry), BLANK]
            again = [((HEAD, 0.0, f"ledger position {entry.position} (continued)"),)]
        start = pages.place([*pending, *rows], again)
        pending = []
        if entry.withheld in LOGGED:
            privileged[entry.position] = start
    if not timeline.entries:
        pages.place(_lines(NOTE, "[No entries in scope.]"), [])
    while len(pages.pages) > 1 and not any(pages.pages[-1]):
        pages.pages.pop()
    return LaidOut(pages.pages, privileged)


def _facts(label: str, value: str) -> list[Row]:
    pieces = wrap(drawable(" ".join(value.split())), CONTENT_WIDTH - 110, BODY)
    rows: list[Row] = [((LABEL, 0.0, drawable(label)), (BODY, 110.0, pieces[0]))]
    rows += [((BODY, 110.0, piece),) for piece in pieces[1:]]
    return rows


def slip_sheet(native: Native) -> list[Row]:
    """The one page standing for a native in the image set: what it is and where it is."""
    facts = (
        ("File name", native.file_name),
        ("Media type", native.media_type),
        ("Custodian", native.custodian),
        ("From", native.sender or ""),
        ("To", "; ".join(native.to)),
        ("Sent", native.date_sent or ""),
        ("Subject", native.subject or ""),
        ("Ledger position", str(native.position)),
        ("SHA-256", native.sha256),
        ("Native file", native.path),
    )
    rows: list[Row] = [*_lines(TITLE, "DOCUMENT PRODUCED IN NATIVE FORMAT"), BLANK]
    for label, value in facts:
        if value:
            rows += _facts(label, value)
    return rows
