"""Notes: drafted, edited while a draft, signed once, then only amended by addenda."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, status

from api.auth import load, now
from api.care import chart_access
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.schemas import AddendumIn, NoteEditIn, NoteIn, NoteOut
from domain.notes import Note
from domain.patients import Patient

router = APIRouter(prefix="/notes", tags=["notes"])


def _out(note: Note) -> NoteOut:
    return NoteOut(
        note_id=note.id,
        patient_id=note.patient_id,
        signed=note.is_signed,
        addenda=len(note.addenda),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def draft(body: NoteIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> NoteOut:
    access = chart_access(ledger, runner, principal, body.patient_id)
    load(ledger, body.patient_id, Patient)
    note = Note.draft(
        patient_id=body.patient_id, author_id=principal.user_id, kind=body.kind, text=body.text
    )
    with access.acting():
        ledger.save(note)
    return _out(note)


@router.put("/{note_id}")
def edit(
    note_id: UUID, body: NoteEditIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> NoteOut:
    note = load(ledger, note_id, Note)
    access = chart_access(ledger, runner, principal, note.patient_id)
    note.edit(body.text)
    with access.acting():
        ledger.save(note)
    return _out(note)


@router.post("/{note_id}/sign")
def sign(note_id: UUID, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> NoteOut:
    note = load(ledger, note_id, Note)
    access = chart_access(ledger, runner, principal, note.patient_id)
    note.sign(signed_by=principal.user_id, at=now())
    with access.acting():
        ledger.save(note)
    return _out(note)


@router.post("/{note_id}/addenda", status_code=status.HTTP_201_CREATED)
def amend(
    note_id: UUID, body: AddendumIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> NoteOut:
    note = load(ledger, note_id, Note)
    access = chart_access(ledger, runner, principal, note.patient_id)
    note.add_addendum(text=body.text, reason=body.reason, author_id=principal.user_id, at=now())
    with access.acting():
        ledger.save(note)
    return _out(note)
