"""Notes: drafted, edited while a draft, signed once, then only amended by addenda."""

from __future__ import annotations

from uuid import UUID

from fastapi import status

from api.auth import now
from api.care import add_to_chart, change_in_chart
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import AddendumIn, NoteEditIn, NoteIn, NoteOut
from domain.notes import Note

router = Router(prefix="/notes", tags=["notes"])


def _out(note: Note) -> NoteOut:
    return NoteOut(
        note_id=note.id,
        patient_id=note.patient_id,
        signed=note.is_signed,
        addenda=len(note.addenda),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
def draft(body: NoteIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> NoteOut:
    note = add_to_chart(
        ledger,
        runner,
        principal,
        body.patient_id,
        lambda: Note.draft(
            patient_id=body.patient_id, author_id=principal.user_id, kind=body.kind, text=body.text
        ),
    )
    return _out(note)


@router.put("/{note_id}")
def edit(
    note_id: UUID, body: NoteEditIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> NoteOut:
    return _out(
        change_in_chart(ledger, runner, principal, note_id, Note, lambda n: n.edit(body.text))
    )


@router.post("/{note_id}/sign")
def sign(note_id: UUID, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> NoteOut:
    return _out(
        change_in_chart(
            ledger,
            runner,
            principal,
            note_id,
            Note,
            lambda n: n.sign(signed_by=principal.user_id, at=now()),
        )
    )


@router.post("/{note_id}/addenda", status_code=status.HTTP_201_CREATED)
def amend(
    note_id: UUID, body: AddendumIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> NoteOut:
    return _out(
        change_in_chart(
            ledger,
            runner,
            principal,
            note_id,
            Note,
            lambda n: n.add_addendum(
                text=body.text, reason=body.reason, author_id=principal.user_id, at=now()
            ),
        )
    )
