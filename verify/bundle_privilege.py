"""Reading the privilege log a bundle carries (docs/REVIEW_FILES.md §8), so that every withheld
claim can be matched to its row and no row stands for nothing (docs/BUNDLE_FORMAT.md §5.1)."""

from __future__ import annotations

import csv
import io
import re
from typing import NamedTuple

from verify.errors import MalformedInput

PRIVILEGE_LOG = "privilege/privilege_log.csv"
POSITION, CLAIM, COMMITMENT = "Ledger position", "Privilege claimed", "Commitment (SHA-256)"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class Row(NamedTuple):
    position: int
    claim: str  # as written: see ``cell``
    commitment: str


def cell(value: str) -> str:
    """A value as the log writes it: with an apostrophe before it when a spreadsheet would run
    it as a formula. Rows are compared in this form, which is one-to-one (a value that starts
    with an apostrophe itself is written as it is)."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def privilege_rows(data: bytes) -> list[Row]:
    """The rows of ``privilege_log.csv`` (UTF-8 with BOM, RFC 4180, CR LF), in file order."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedInput("not UTF-8") from None
    if not text.startswith("\ufeff"):
        raise MalformedInput("does not start with a UTF-8 byte order mark")
    try:
        table = list(csv.reader(io.StringIO(text[1:], newline=""), strict=True))
    except csv.Error as e:
        raise MalformedInput(f"is not RFC 4180 CSV: {e}") from None
    if not table:
        raise MalformedInput("has no header row")
    head = table[0]
    try:
        at = {name: head.index(name) for name in (POSITION, CLAIM, COMMITMENT)}
    except ValueError as e:
        raise MalformedInput(f"lacks a column: {e}") from None
    rows = []
    for number, row in enumerate(table[1:], start=1):
        if len(row) != len(head):
            raise MalformedInput(f"row {number} has {len(row)} cells, the header {len(head)}")
        position = row[at[POSITION]]
        if not re.fullmatch(r"0|[1-9][0-9]{0,18}", position):
            raise MalformedInput(f"row {number}: ledger position {position!r} is not a number")
        rows.append(Row(int(position), row[at[CLAIM]], row[at[COMMITMENT]]))
    return rows
