"""How deep JSON text nests, found without parsing it, so that it can be refused before a
parser recurses into it.

Python's ``json`` module recurses once per level: text nested a few thousand deep raises
``RecursionError`` (a 500 at the HTTP edge), and anything deep enough to pass is still work no
client of ours needs. A :class:`DepthGauge` follows the text chunk by chunk, as it arrives, and
counts only brackets outside strings; it does not check that the text is valid JSON (the parser
does that afterwards, on text now known to be shallow).
"""

from __future__ import annotations

import re

from domain.errors import ChartError

MAX_DEPTH = 64
"""Deep enough for any JSON the API or an import map takes (the deepest nest a few levels)."""

# Only these bytes change the state; everything between them is skipped by the regex engine,
# which keeps a megabyte of ordinary JSON to a few thousand Python steps.
_SIGNIFICANT = re.compile(rb'[\\"\[\]{}]')
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


class TooDeeplyNested(ChartError):
    """JSON text nests arrays and objects deeper than the bound."""


class DepthGauge:
    """Feed JSON text in chunks, split anywhere (even inside a string or an escape);
    :meth:`feed` raises :class:`TooDeeplyNested` as soon as the text nests deeper than
    ``limit``. ``deepest`` is the deepest level seen so far."""

    def __init__(self, limit: int = MAX_DEPTH, what: str = "the JSON") -> None:
        self.limit = limit
        self.what = what
        self.depth = 0
        self.deepest = 0
        self._in_string = False
        self._escaped = False  # the previous chunk ended on a backslash inside a string

    def feed(self, chunk: bytes) -> None:
        skip = 0 if self._escaped else -1  # the position of a byte a backslash escapes
        for match in _SIGNIFICANT.finditer(chunk):
            at = match.start()
            if at == skip:
                continue
            byte = chunk[at]
            if self._in_string:
                if byte == _BACKSLASH:
                    skip = at + 1
                elif byte == _QUOTE:
                    self._in_string = False
            elif byte == _QUOTE:
                self._in_string = True
            elif byte in _OPEN:
                self.depth += 1
                if self.depth > self.deepest:
                    self.deepest = self.depth
                    if self.depth > self.limit:
                        raise TooDeeplyNested(f"{self.what} nests deeper than {self.limit} levels")
            elif byte in _CLOSE and self.depth > 0:
                self.depth -= 1
        self._escaped = skip == len(chunk)


def check_depth(text: bytes | str, limit: int = MAX_DEPTH, what: str = "the JSON") -> None:
    """Raise :class:`TooDeeplyNested` if ``text`` nests deeper than ``limit``."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    DepthGauge(limit, what).feed(data)
