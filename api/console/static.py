"""The console's static files: a fixed list, read once, so no path from a request ever reaches
the filesystem."""

from __future__ import annotations

import functools
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import Response

from api.console.web import ConsoleRoute

FOLDER = Path(__file__).parent / "static"
TYPES = {
    "htmx.min.js": "text/javascript; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "htmx.LICENSE": "text/plain; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

router = APIRouter(route_class=ConsoleRoute)


@functools.cache
def _content(name: str) -> bytes:
    return (FOLDER / name).read_bytes()


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    if name not in TYPES:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(_content(name), media_type=TYPES[name])
