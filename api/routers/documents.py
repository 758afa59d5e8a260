"""Documents: uploaded as raw bytes (spooled to disk as they arrive, ``api/spool.py``), kept
exactly as received with their SHA-256; reading one records its access event first."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Query, Response, status

from api.auth import load
from api.care import chart_access
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import NOT_BLANK, DocumentOut, Purpose
from api.spool import SpooledBody, request_body
from domain.documents import MEDIA_TYPE, SHA256_HEX, Document
from domain.patients import Patient
from projections.reads import Reader, record_access

router = Router(prefix="/documents", tags=["documents"])


def _out(d: Document) -> DocumentOut:
    return DocumentOut(
        document_id=d.id,
        patient_id=d.patient_id,
        sha256=d.sha256,
        size=d.size,
        media_type=d.media_type,
        original_filename=d.original_filename,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=request_body("application/octet-stream", "Content"),
)
def upload(
    content: SpooledBody,
    principal: Clinician,
    ledger: LedgerDep,
    runner: RunnerDep,
    filename: Annotated[str, Query(min_length=1, max_length=255, pattern=NOT_BLANK)],
    media_type: Annotated[
        str, Query(min_length=1, max_length=100, pattern=f"^{MEDIA_TYPE.pattern}$")
    ] = "application/octet-stream",
    patient_id: UUID | None = None,
    sha256: Annotated[
        str | None,
        Query(description="if given, must match the content", pattern=f"^{SHA256_HEX.pattern}$"),
    ] = None,
) -> DocumentOut:
    """The request body is the document's bytes (``Content-Type: application/octet-stream``)."""
    acting = principal.acting
    if patient_id is not None:
        acting = chart_access(
            ledger, runner, principal, patient_id, action="create", category="documents"
        ).acting
        load(ledger, patient_id, Patient)
    document = Document.store(
        content=content.read(),
        sha256=content.sha256 if sha256 is None else sha256,
        original_filename=filename,
        media_type=media_type,
        uploader_id=principal.user_id,
        patient_id=patient_id,
    )
    with acting():
        ledger.save(document)
    return _out(document)


@router.get("/{document_id}", responses={200: {"content": {"application/octet-stream": {}}}})
def download(
    document_id: UUID,
    principal: Clinician,
    ledger: LedgerDep,
    runner: RunnerDep,
    purpose: Purpose = "TREAT",
) -> Response:
    """The document's bytes exactly as stored (its SHA-256 in the ``Digest`` header)."""
    document = load(ledger, document_id, Document)
    reader = Reader(principal.user_id, purpose, str(principal.session_id))
    if document.patient_id is not None:
        reader = chart_access(
            ledger,
            runner,
            principal,
            document.patient_id,
            category="documents",
            target_id=document.id,
        ).reader(purpose)
    elif document.uploader_id != principal.user_id and "owner" not in principal.roles:
        load(ledger, UUID(int=0), Document)  # someone else's unfiled upload: as if absent
    record_access(ledger, reader, "access", "documents", [document.patient_id])
    return Response(
        document.content,
        media_type="application/octet-stream",
        headers={"X-Content-SHA256": document.sha256, "X-Media-Type": document.media_type},
    )
