"""One router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    from api.routers import auth, checkpoints, users

    return [auth.router, users.router, checkpoints.router]
