"""The chart, now or as it stood at a moment. Each read records its Access event first: if that
event cannot be written, no data is returned (``projections/reads.py``)."""

from __future__ import annotations

from uuid import UUID

from fastapi import HTTPException

from api.care import chart_access
from api.deps import LedgerDep, RunnerDep
from api.roles import Clinician
from api.routing import Router
from api.schemas import ChartEntryOut, ChartOut, Instant, Purpose, jsonable
from projections.original_times import entry_times
from projections.reads import open_chart, open_chart_as_of

router = Router(prefix="/patients", tags=["chart"])


@router.get("/{patient_id}/chart")
def read_chart(
    patient_id: UUID,
    principal: Clinician,
    ledger: LedgerDep,
    runner: RunnerDep,
    as_of: Instant | None = None,
    purpose: Purpose = "TREAT",
) -> ChartOut:
    reader = chart_access(ledger, runner, principal, patient_id).reader(purpose)
    if as_of is None:
        entries = open_chart(ledger, runner, reader, patient_id)
    else:
        if as_of.utcoffset() is None:
            raise HTTPException(422, "as_of must carry a time zone (e.g. Z)")
        entries = open_chart_as_of(ledger, reader, patient_id, as_of)
    return ChartOut(
        patient_id=patient_id,
        as_of=as_of,
        entries=[
            ChartEntryOut(
                entry_id=e.entry_id,
                kind=e.kind,
                version=e.version,
                first_recorded=e.first_recorded,
                last_recorded=e.last_recorded,
                state=jsonable(e.state),
                original_times=entry_times(e.kind, e.state),
            )
            for e in entries
        ],
    )
