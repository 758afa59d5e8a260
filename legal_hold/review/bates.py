"""Bates numbers: a prefix plus a zero-padded number, one per PDF page and one per native.

Numbers run consecutively from the production's first number across its documents in the order
they are produced, so each is unique and, because every number of one production has the same
width, sorting the labels as text sorts them as numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from legal_hold.review.errors import InvalidReviewInput

MIN_DIGITS = 7
# Labels become file names (images/<label>.pdf) and OPT keys: no separators, dots or commas.
PREFIX_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,23}")


def check_prefix(prefix: str) -> None:
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise InvalidReviewInput(
            "bates prefix must be 1 to 24 characters: an ASCII letter, then ASCII letters, "
            "digits, '_' or '-'"
        )


def digits_for(last_number: int) -> int:
    """The width every label of a production gets: enough for its last number, at least 7."""
    return max(MIN_DIGITS, len(str(last_number)))


def label(prefix: str, number: int, digits: int) -> str:
    return f"{prefix}{number:0{digits}d}"


@dataclass(frozen=True)
class BatesRange:
    """The consecutive numbers of one document: ``first`` .. ``first + count - 1``."""

    prefix: str
    first: int
    count: int
    digits: int

    @property
    def beg(self) -> str:
        return label(self.prefix, self.first, self.digits)

    @property
    def end(self) -> str:
        return label(self.prefix, self.first + self.count - 1, self.digits)

    def labels(self) -> list[str]:
        return [label(self.prefix, self.first + i, self.digits) for i in range(self.count)]


def assign(prefix: str, start: int, page_counts: Sequence[int]) -> list[BatesRange]:
    """One range per document, in order, each as long as the document's page count (>= 1)."""
    check_prefix(prefix)
    if start < 1:
        raise InvalidReviewInput(f"bates start must be 1 or more, not {start}")
    if any(count < 1 for count in page_counts):
        raise InvalidReviewInput("every produced document needs at least one Bates number")
    digits = digits_for(start + sum(page_counts) - 1)
    ranges = []
    number = start
    for count in page_counts:
        ranges.append(BatesRange(prefix, number, count, digits))
        number += count
    return ranges
