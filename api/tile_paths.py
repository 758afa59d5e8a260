"""The URL paths of C2SP tlog-tiles (https://c2sp.org/tlog-tiles, docs/TILES.md):
``tile/<L>/<N>[.p/<W>]``, with N in zero-padded 3-digit elements, all but the last prefixed
``x``. Each tile has exactly one spelling; any other is no tile.
"""

from __future__ import annotations

WIDTH = 256  # hashes in a full tile
MAX_LEVEL = 63


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


def available(size: int, level: int, index: int) -> int:
    """How many hashes tile ``index`` of ``level`` has in a tree of ``size`` leaves (0: none):
    level L has floor(size / 256**L) hashes."""
    return max(0, min(WIDTH, (size >> (8 * level)) - index * WIDTH))
