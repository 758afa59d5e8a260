"""What producing a bundle refuses, before anything is written or recorded.

Messages name matters, positions and sizes, never chart content or names.
"""

from __future__ import annotations

from legal_hold.errors import HoldError, InvalidHoldEntry


class ProductionError(HoldError):
    """A production was refused."""


class InvalidProduction(ProductionError, InvalidHoldEntry):
    """A withheld position outside the production, an unknown earlier checkpoint, a bad path."""


class NothingToProduce(ProductionError):
    """The matter has no hold, or its holds name nobody with a record."""
