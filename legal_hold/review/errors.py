"""What the review writers refuse before writing anything.

Messages name fields, paths the bundle writer chose and numbers, never chart content or names.
"""

from __future__ import annotations

from legal_hold.errors import InvalidHoldEntry


class InvalidReviewInput(InvalidHoldEntry):
    """A ``ReviewInput`` the review writers cannot lay out (a bad Bates prefix, no native)."""
