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
from itertools import accumulate

from domain.errors import ChartError

MAX_DEPTH = 64
"""Deep enough for any JSON the API or an import map takes (the deepest nest a few levels)."""

# The scan runs in C, not a Python step per byte (a megabyte of brackets or quotes took 0.4 s
# that way, before authentication): strings are cut out by one regex, the brackets left become
# +1 and -1 bytes, and the levels are their running sum (itertools.accumulate). A string the
# chunk does not close matches to the chunk's end, so the regex never fails at its quote and
# starts again inside it (quadratic on a chunk of escaped quotes). Whether the chunk ends inside
# a string, and on a backslash escaping the next chunk's first byte, is a second pass (_END).
_BODY = rb'[^"\\]*+(?:\\.[^"\\]*+)*+'  # a string's content, up to a quote or a lone backslash
_STRINGS = re.compile(rb'"' + _BODY + rb'(?:"|\\?\Z)', re.DOTALL)
_END = re.compile(rb'(?:[^"]++|"' + _BODY + rb'")*+(?:(")' + _BODY + rb"(\\)?)?\Z", re.DOTALL)
_STRING_REST = re.compile(_BODY, re.DOTALL)
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")
_QUOTE = ord('"')


class TooDeeplyNested(ChartError):
    """JSON text nests arrays and objects deeper than the bound."""


class DepthGauge:
    """Feed JSON text in chunks, split anywhere (even inside a string or an escape);
    :meth:`feed` raises :class:`TooDeeplyNested` as soon as the text nests deeper than
    ``limit``. ``deepest`` is the deepest level seen so far, ``depth`` the current one.

    Text that closes more than it opened is not JSON: a parser refuses it at that point,
    before anything after it, so the gauge stops counting there."""

    def __init__(self, limit: int = MAX_DEPTH, what: str = "the JSON") -> None:
        self.limit = limit
        self.what = what
        self.depth = 0
        self.deepest = 0
        self._in_string = False
        self._escaped = False  # the previous chunk ended on a backslash inside a string
        self._broken = False

    def feed(self, chunk: bytes) -> None:
        if self._broken:
            return
        at = 0
        if self._in_string:
            ended = self._finish_string(chunk)
            if ended is None:
                return
            at = ended
        if at >= len(chunk):
            return
        self._count(_STRINGS.sub(b"", chunk[at:]).translate(_STEPS, _NOT_BRACKETS))
        end = _END.match(chunk, at)
        if end is not None and end.group(1) is not None:
            self._in_string, self._escaped = True, end.group(2) is not None

    def _finish_string(self, chunk: bytes) -> int | None:
        """Where the open string ends in ``chunk`` (just past its quote), or None."""
        start = 1 if self._escaped else 0
        self._escaped = False
        if start >= len(chunk):
            self._escaped = start > len(chunk)
            return None
        rest = _STRING_REST.match(chunk, start)
        end = rest.end() if rest is not None else start
        if end == len(chunk):
            return None
        if chunk[end] == _QUOTE:
            self._in_string = False
            return end + 1
        self._escaped = True  # a backslash, the chunk's last byte
        return None

    def _count(self, steps: bytes) -> None:
        if not steps:
            return
        signed = memoryview(steps).cast("b")
        top = max(accumulate(signed, initial=self.depth))
        self.deepest = max(self.deepest, top)
        if top > self.limit:
            raise TooDeeplyNested(f"{self.what} nests deeper than {self.limit} levels")
        if min(accumulate(signed, initial=self.depth)) < 0:
            self._broken = True
        self.depth += sum(signed)


def check_depth(text: bytes | str, limit: int = MAX_DEPTH, what: str = "the JSON") -> None:
    """Raise :class:`TooDeeplyNested` if ``text`` nests deeper than ``limit``."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    DepthGauge(limit, what).feed(data)
