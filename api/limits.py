"""Bounds on a request's size and shape, enforced before and while the app reads it.

- Headers: their total bytes over ``max_header_bytes`` is a 431 problem (RFC 6585). uvicorn's
  httptools parser takes headers of any size, so the app counts them itself.
- Body: over its limit is a 413 problem. Uploads (``POST /documents``, ``/imports/...``,
  ``/threads/{id}/email``) have ``max_upload_bytes``, everything else ``max_body_bytes``. A
  declared ``Content-Length`` over the limit is refused before the app runs; otherwise the bytes
  are counted as they pass through to the app, which is refused the moment the count passes the
  limit. Nothing is held here: a 50 MB upload goes to the route (``request.stream()``) chunk by
  chunk.
- JSON: a JSON body and any query value that is a JSON array or object, nesting deeper than
  ``max_json_depth``, is a 400 problem, found by counting brackets (``domain/json_depth.py``)
  before any parser recurses into it. A JSON body has the small limit, even on an upload path.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from api.errors import (
    BodyTooLarge,
    EdgeRefusal,
    HeadersTooLarge,
    NestedTooDeep,
    problem,
)
from domain.json_depth import MAX_DEPTH, DepthGauge, TooDeeplyNested

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

UPLOADS = re.compile(r"/documents|/imports/[^/]+|/threads/[^/]+/email")
"""Where ``POST`` takes a file as its body: a scanned PDF, a billing export, a lab feed, an
email as received (attachments and all)."""


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_048_576
    max_upload_bytes: int = 50 * 1_048_576
    max_header_bytes: int = 16_384
    max_json_depth: int = MAX_DEPTH

    def body_limit(self, method: str, path: str) -> int:
        if method == "POST" and UPLOADS.fullmatch(path):
            return self.max_upload_bytes
        return self.max_body_bytes


def header_bytes(headers: list[tuple[bytes, bytes]]) -> int:
    """The size of the header fields as sent: ``name: value`` and CRLF for each."""
    return sum(len(name) + len(value) + 4 for name, value in headers)


def _is_json(content_type: bytes | None) -> bool:
    """What FastAPI parses as JSON: ``application/json`` or ``application/*+json`` (a body
    without a content type it takes as bytes: its ``strict_content_type`` default)."""
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


class RequestLimits:
    """ASGI middleware: the bounds above, each refusal an RFC 9457 problem."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            limit, gauge = self._check_head(scope)
        except EdgeRefusal as refusal:
            await _refuse(refusal, scope, receive, send)
            return
        received, started = 0, False

        async def counted() -> MutableMapping[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > limit:
                    raise BodyTooLarge(f"the body is larger than {limit} bytes")
                if gauge is not None:
                    _feed(gauge, chunk)
            return message

        async def watched(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except EdgeRefusal as refusal:  # raised by a reader outside FastAPI's handlers
            if started:
                raise
            await _refuse(refusal, scope, receive, send)

    def _check_head(self, scope: Scope) -> tuple[int, DepthGauge | None]:
        """The body's limit and its depth gauge (if JSON), or the refusal of the head."""
        headers: list[tuple[bytes, bytes]] = list(scope.get("headers") or [])
        if header_bytes(headers) > self.limits.max_header_bytes:
            raise HeadersTooLarge(
                f"the header fields are larger than {self.limits.max_header_bytes} bytes"
            )
        depth = self.limits.max_json_depth
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if value.lstrip()[:1] in ("[", "{"):
                gauge = DepthGauge(depth, f"the query parameter {name[:40]!r}")
                _feed(gauge, value.encode("utf-8", "surrogatepass"))
        fields = dict(headers)
        is_json = _is_json(fields.get(b"content-type"))
        limit = self.limits.body_limit(scope["method"], scope["path"])
        if is_json:  # a JSON body is never a file: the small limit, wherever it goes
            limit = min(limit, self.limits.max_body_bytes)
        declared = fields.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise BodyTooLarge(f"the body is larger than {limit} bytes")
        return limit, DepthGauge(depth, "the body") if is_json else None


def _feed(gauge: DepthGauge, chunk: bytes) -> None:
    try:
        gauge.feed(chunk)
    except TooDeeplyNested as e:
        raise NestedTooDeep(str(e)) from None


async def _refuse(refusal: EdgeRefusal, scope: Scope, receive: Receive, send: Send) -> None:
    response = problem(refusal.status, refusal.slug, refusal.title, refusal.detail)
    await response(scope, receive, send)
