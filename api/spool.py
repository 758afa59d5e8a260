"""Request bodies spooled to disk as they arrive, for the routes that take files (imports and
document uploads), instead of being gathered in memory by the framework.

The body is written chunk by chunk to a temporary file (0600) in ``<practice home>/spool``
(0700, whatever the umask), hashed on the way, and the file is removed when the request ends,
answered or not. The route reads it once, when it needs the bytes: a 50 MB upload then costs
one copy in memory at most, not the framework's list of chunks, its joined body and a copy per
layer that passes it on. The size limit is the body limit's (``api/errors.py``), enforced
before any chunk gets here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError

from api.deps import ServicesDep

FOLDER = "spool"
# A body file older than this was left by a process that died mid-request (a live request's is
# removed when it ends): the next request removes it, as no other is reading it any more.
STALE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Spooled:
    """A request body on disk: where, how long, and its SHA-256 (hex)."""

    path: Path
    size: int
    sha256: str

    def read(self) -> bytes:
        return self.path.read_bytes()


def spool_folder(home: Path) -> Path:
    """The spool folder, made 0700 if need be, without the files crashed requests left."""
    folder = home / FOLDER
    folder.mkdir(mode=0o700, exist_ok=True)
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask; the spool holds PHI
    stale = time.time() - STALE_SECONDS
    for leftover in folder.glob("*.body"):
        try:
            if leftover.stat().st_mtime < stale:
                leftover.unlink()
        except FileNotFoundError:  # another request removed it first
            pass
    return folder


async def spool_body(request: Request, services: ServicesDep) -> AsyncIterator[Spooled]:
    """The request's body, streamed into a file of the spool folder; removed afterwards. No
    body at all is refused as FastAPI refuses a missing required body (422)."""
    fd, name = tempfile.mkstemp(dir=spool_folder(services.settings.store.home), suffix=".body")
    path, digest, size = Path(name), hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:  # mkstemp made it 0600
            async for chunk in request.stream():
                out.write(chunk)
                digest.update(chunk)
                size += len(chunk)
        if size == 0:
            missing = {"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}
            raise RequestValidationError([missing])
        yield Spooled(path, size, digest.hexdigest())
    finally:
        path.unlink(missing_ok=True)


SpooledBody = Annotated[Spooled, Depends(spool_body)]


def request_body(media_type: str, title: str = "Body") -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a spooled route, as FastAPI describes a required raw
    ``bytes`` body of ``media_type`` (it cannot see a body it does not parse itself)."""
    schema = {"type": "string", "contentMediaType": "application/octet-stream", "title": title}
    return {"requestBody": {"required": True, "content": {media_type: {"schema": schema}}}}
