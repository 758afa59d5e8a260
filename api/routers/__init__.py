"""One router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from api.routers import (
        audit,
        auth,
        chart,
        checkpoints,
        emergency,
        labs,
        notes,
        patients,
        users,
    )

    return [
        auth.router,
        users.router,
        patients.router,
        chart.router,
        labs.router,
        notes.router,
        audit.router,
        emergency.router,
        checkpoints.router,
    ]
