"""Notes: drafted, edited while a draft, signed once, then only amended by addenda.

Only a draft's author edits or signs it; anyone else (an owner too) is refused with 403
``not-permitted``, recorded as one ``Refusal`` naming the note, and writes their own note (or an
addendum, in their own name, once the note is signed).
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from fastapi import status

from api.auth import Principal, load, now
from api.care import add_to_chart, change_in_chart, chart_access, refuse
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import AddendumIn, NoteEditIn, NoteIn, NoteOut
from domain.errors import NotPermitted
from domain.notes import Note
from events.ledger import Ledger
from projections.runner import Runner

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
        category="notes",
    )
    return _out(note)


def _as_author(
    ledger: Ledger,
    runner: Runner,
    principal: Principal,
    note_id: UUID,
    what: str,
    change: Callable[[Note], object],
) -> Note:
    """Change the draft as its author; anyone else's attempt is refused and recorded."""
    note = load(ledger, note_id, Note)
    access = chart_access(
        ledger,
        runner,
        principal,
        note.patient_id,
        action="change",
        category="notes",
        target_id=note.id,
    )
    try:
        note.check_author(principal.user_id, what)
    except NotPermitted:
        refuse(
            ledger,
            principal,
            note.patient_id,
            action="change",
            category="notes",
            reason="not-the-author",
            target_id=note.id,
        )
        raise
    change(note)
    with access.acting():
        ledger.save(note)
    return note


@router.put("/{note_id}")
def edit(
    note_id: UUID, body: NoteEditIn, principal: Clinician, ledger: LedgerDep, runner: RunnerDep
) -> NoteOut:
    return _out(_as_author(ledger, runner, principal, note_id, "edit", lambda n: n.edit(body.text)))


@router.post("/{note_id}/sign")
def sign(note_id: UUID, principal: Clinician, ledger: LedgerDep, runner: RunnerDep) -> NoteOut:
    return _out(
        _as_author(
            ledger,
            runner,
            principal,
            note_id,
            "sign",
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
            category="notes",
        )
    )
