"""One router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from api.routers import checkpoints

    return [checkpoints.router]
