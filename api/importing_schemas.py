"""HTTP models of imports: the report a 201 answer carries, and a 422 problem's ``report``."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel

from domain.imports.report import ImportReport


class RejectionOut(BaseModel):
    location: str
    reasons: list[str]


class ImportReportOut(BaseModel):
    """Every item counted; each rejection with its location and reasons (never a value)."""

    kind: str
    source_sha256: str
    items: int
    accepted: int
    rejected: int
    rejections: list[RejectionOut]
    written: bool
    import_id: UUID | None = None
    created: list[UUID] = []

    @classmethod
    def of(cls, report: ImportReport) -> ImportReportOut:
        return cls(
            kind=report.kind,
            source_sha256=report.source_sha256,
            items=report.items,
            accepted=report.accepted,
            rejected=len(report.rejections),
            rejections=[
                RejectionOut(location=r.location, reasons=list(r.reasons))
                for r in report.rejections
            ],
            written=report.written,
            import_id=report.import_id,
            created=list(report.created),
        )
