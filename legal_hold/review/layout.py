"""How a timeline falls into lines and pages: pure, so page counts (and Bates numbers) are known
before anything is drawn.

A page is a list of ``(style, text)`` lines, ``text`` already drawable by the core fonts
(``winansi``). Each entry starts with a heading line (position, time, kind, actor), then the
source's own time if any, then its text wrapped at spaces to ``BODY_CHARS`` (a word longer than a
line is cut), then a blank line. An entry running onto a new page repeats its position first.
A withheld entry shows why, never its text.
"""

from __future__ import annotations

from dataclasses import dataclass

from legal_hold.review.items import Native, Timeline, TimelineEntry
from legal_hold.review.winansi import to_winansi

# Letter paper, Courier 8 pt (4.8 pt a character) on 9.6 pt lines between 0.75 in margins.
LINE_CHARS = 105
BODY_INDENT = "  "
BODY_CHARS = LINE_CHARS - len(BODY_INDENT)
LINES_PER_PAGE = 68

HEAD, BODY, NOTE = 0, 1, 2  # styles: bold heading, text, italic notice
Line = tuple[int, str]

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


@dataclass
class LaidOut:
    """A timeline's pages and, for the position of each entry listed in the privilege log
    (``LOGGED``), the page index it is on."""

    pages: list[list[Line]]
    privileged_on_page: dict[int, int]


def wrap(text: str, width: int) -> list[str]:
    """``text`` (one line, no line breaks) in pieces of at most ``width`` characters, broken at
    the last space that fits (the space is dropped) or, in a longer word, cut at ``width``."""
    pieces = []
    while len(text) > width:
        cut = text.rfind(" ", 0, width + 1)
        if cut <= 0:
            pieces.append(text[:width])
            text = text[width:]
        else:
            pieces.append(text[:cut])
            text = text[cut + 1 :]
    pieces.append(text)
    return pieces


def heading(entry: TimelineEntry) -> str:
    by = f"  by {entry.actor}" if entry.actor else ""
    return to_winansi(f"#{entry.position}  {entry.recorded}  {entry.kind}{by}")


def entry_lines(entry: TimelineEntry) -> list[Line]:
    lines: list[Line] = [(HEAD, piece) for piece in wrap(heading(entry), LINE_CHARS)]
    if entry.original:
        source = to_winansi(f"{BODY_INDENT}source time: {entry.original}")
        lines.extend((NOTE, piece) for piece in wrap(source, LINE_CHARS))
    if entry.withheld is not None:
        notice = WITHHELD_NOTICE.get(entry.withheld, "[WITHHELD: {w}]")
        text = BODY_INDENT + notice.format(p=entry.position, w=to_winansi(entry.withheld))
        lines.extend((NOTE, piece) for piece in wrap(text, LINE_CHARS))
        return lines
    for paragraph in entry.text.splitlines():
        for piece in wrap(to_winansi(paragraph.expandtabs(4)), BODY_CHARS):
            lines.append((BODY, BODY_INDENT + piece))
    return lines


def layout(timeline: Timeline, lines_per_page: int = LINES_PER_PAGE) -> LaidOut:
    """Every entry of ``timeline`` in order, on pages of at most ``lines_per_page`` lines."""
    if lines_per_page < 2:  # a continued entry needs its "(continued)" line and one more
        raise ValueError("a page needs room for at least two lines")
    pages: list[list[Line]] = [[]]
    privileged: dict[int, int] = {}
    for entry in timeline.entries:
        lines = entry_lines(entry)
        page = pages[-1]
        # Start a short entry on a fresh page rather than split it; a long one splits anyway.
        if page and len(page) + len(lines) > lines_per_page and len(lines) < lines_per_page // 4:
            page = _new_page(pages)
        if entry.withheld in LOGGED:
            privileged[entry.position] = len(pages) - 1
        for i, line in enumerate(lines):
            if len(page) >= lines_per_page:
                page = _new_page(pages)
                if i:
                    page.append((HEAD, f"#{entry.position} (continued)"))
            page.append(line)
        if len(page) < lines_per_page:
            page.append((BODY, ""))
    if not pages[-1] and len(pages) > 1:
        pages.pop()
    if not timeline.entries:
        pages[0].append((NOTE, "[No entries in scope.]"))
    return LaidOut(pages, privileged)


def _new_page(pages: list[list[Line]]) -> list[Line]:
    pages.append([])
    return pages[-1]


def slip_sheet(native: Native) -> list[Line]:
    """The one page standing for a native in the image set: what it is and where it is."""
    facts = (
        ("File name", native.file_name),
        ("Media type", native.media_type),
        ("Custodian", native.custodian),
        ("Subject", native.subject or ""),
        ("Ledger position", str(native.position)),
        ("SHA-256", native.sha256),
        ("Native file", native.path),
    )
    lines: list[Line] = [(HEAD, "DOCUMENT PRODUCED IN NATIVE FORMAT"), (BODY, "")]
    for name, value in facts:
        for piece in wrap(to_winansi(f"{name}: {' '.join(value.split())}"), LINE_CHARS):
            lines.append((BODY, piece))
    return lines
