"""Text for the PDF core fonts, which draw only Windows-1252 (WinAnsiEncoding).

Core fonts keep the renderings small, fast and identical on every machine (no font file to find
or embed). Any other character is written as ``[U+XXXX]`` (its code point in uppercase hex, at
least four digits), and so are control characters; a literal ``[U+`` in the text is written as
``[U+005B]U+`` so the notation stays unambiguous. ``from_winansi`` undoes it exactly. The
exact text is also in the production's text files and in the ledger itself.
"""

from __future__ import annotations

import re

# Controls (C0, DEL, C1) are invisible or undefined in WinAnsi; so are the five code points
# Windows-1252 leaves unassigned, which the codec refuses anyway.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPE = re.compile(r"\[U\+([0-9A-F]{4,6})\]")
_LITERAL = "[U+"


class _Table(dict[int, str]):
    """``str.translate`` table: a drawable character to itself, any other to its escape,
    worked out on first sight and remembered."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        try:
            drawable = not _CONTROL.match(char) and bool(char.encode("cp1252"))
        except UnicodeEncodeError:
            drawable = False
        self[code] = char if drawable else f"[U+{code:04X}]"
        return self[code]


_TABLE = _Table()


def to_winansi(text: str) -> str:
    """``text`` with every character the core fonts cannot draw written as ``[U+XXXX]``."""
    if text.isascii() and _LITERAL not in text and not _CONTROL.search(text):
        return text
    return text.replace(_LITERAL, "[U+005B]U+").translate(_TABLE)


def from_winansi(text: str) -> str:
    """The text ``to_winansi`` was given."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
