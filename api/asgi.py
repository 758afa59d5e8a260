"""The app as each worker process of ``chartledger serve --workers N`` builds it (uvicorn imports
this by name in every process it starts)."""

from __future__ import annotations

import gc

from fastapi import FastAPI

from api.app import create_app
from api.settings import Settings


def app_from_environment() -> FastAPI:
    app = create_app(Settings.from_env())
    # Everything built so far lives as long as the worker: out of the collector's way, so its
    # full collections walk only what requests make (bench/api.py: fewer slow requests).
    gc.freeze()
    return app
