"""What a parser hands back (accepted items, rejections) and what an import reports.

A rejection names where (``row 7``, ``message 2, segment 5 (OBX)``) and the rules that failed,
never the offending value: a birth date, a name or a result is PHI, and reports end up in
terminals, logs and problem documents (docs/IMPORTS.md §2).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

from domain.errors import ChartError

T = TypeVar("T")


@dataclass(frozen=True)
class Rejection:
    """One row, message or file refused, with every reason found for it."""

    location: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.location}: {'; '.join(self.reasons)}"


@dataclass(frozen=True)
class Accepted(Generic[T]):
    location: str
    item: T


@dataclass
class Parsed(Generic[T]):
    """Every item the file holds, either accepted or rejected, in file order."""

    accepted: list[Accepted[T]] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    @property
    def items(self) -> int:
        return len(self.accepted) + len(self.rejections)

    def accept(self, location: str, item: T) -> None:
        self.accepted.append(Accepted(location, item))

    def reject(self, location: str, *reasons: str) -> None:
        self.rejections.append(Rejection(location, tuple(reasons)))


@dataclass(frozen=True)
class ImportReport:
    """What an import did: counted, refused (with reasons), and written or not."""

    kind: str
    source_sha256: str
    items: int
    accepted: int
    rejections: tuple[Rejection, ...]
    written: bool
    import_id: UUID | None = None
    created: tuple[UUID, ...] = ()

    def lines(self) -> list[str]:
        return [str(r) for r in self.rejections]


class ImportRejected(ChartError):
    """The file had rejections and valid items were not to be written alone: nothing written."""

    def __init__(self, report: ImportReport) -> None:
        count = len(report.rejections)
        super().__init__(
            f"{report.kind} import refused: {count} of {report.items} item(s) rejected, "
            "nothing written"
        )
        self.report = report
