"""One router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from api.routers import (
        amendments,
        appointments,
        audit,
        auth,
        care_team,
        chart,
        checkpoints,
        disclosures,
        documents,
        emergency,
        entries,
        holds,
        labs,
        messages,
        notes,
        patients,
        tiles,
        users,
    )

    return [
        auth.router,
        users.router,
        patients.router,
        chart.router,
        labs.router,
        entries.router,
        amendments.router,
        documents.router,
        messages.router,
        appointments.router,
        care_team.router,
        disclosures.router,
        notes.router,
        audit.router,
        emergency.router,
        checkpoints.router,
        tiles.router,
        holds.router,
    ]
