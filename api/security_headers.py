"""Response headers that keep PHI out of caches, sniffers, frames and referrers (issue 17).

Every API response carries ``Cache-Control: no-store`` (charts, exports and bundles must not be
kept by a browser, a proxy or a shared machine's disk cache), no validators (``ETag`` and
``Last-Modified``, which ``FileResponse`` adds to export and production downloads, would invite
a cache to keep and revalidate them, and an ETag made from a file's time and size says when
it was written), ``X-Content-Type-Options: nosniff`` (an uploaded document or an export file is
never run as HTML or script), frame protection (``X-Frame-Options: DENY`` for old browsers,
``Content-Security-Policy: frame-ancestors 'none'`` for the rest) and ``Referrer-Policy:
no-referrer`` (URLs name patients and exports). API responses are data, never pages, so their
CSP also allows nothing to load (``default-src 'none'``).

The console's pages (``/console``, ``api/console/``) are pages: their CSP lets them load their
own scripts, styles and images and post forms to themselves, and nothing else (no inline
script or style, no frames, no ``<base>``). Its static files (htmx, css) hold no PHI and may be
cached for a while; every page is ``no-store`` like the API.

The interactive docs (``/docs``, ``/redoc`` and ``/openapi.json``) hold no PHI: they keep
frame protection but not the strict CSP, which would stop Swagger UI's scripts, and may be
cached.

A full tile of the log (``/tile/...``, api/routers/tiles.py) never changes and holds hashes
only: when the practice publishes its log the route marks it cacheable, and that
``Cache-Control`` is kept. Everything else, the partial tiles and the checkpoint included, is
``no-store`` whatever a route set.

``add_security_headers`` wraps the whole app, outside Starlette's error middleware, so that
the 500 problem it answers with carries the headers too.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI
from starlette.datastructures import MutableHeaders

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Message]], Send], Awaitable[None]]

EVERYWHERE = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
API = {
    **EVERYWHERE,
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
DOCS = {**EVERYWHERE, "Content-Security-Policy": "frame-ancestors 'none'"}
CONSOLE_PREFIX = "/console"
CONSOLE_STATIC = "/console/static/"
CONSOLE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
CONSOLE = {**EVERYWHERE, "Cache-Control": "no-store", "Content-Security-Policy": CONSOLE_CSP}
CONSOLE_FILES = {**CONSOLE, "Cache-Control": "private, max-age=3600"}


def headers_for(path: str, docs_paths: frozenset[str]) -> dict[str, str]:
    """The headers a response to ``path`` carries."""
    if path in docs_paths:
        return DOCS
    if path.startswith(CONSOLE_STATIC):
        return CONSOLE_FILES
    if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
        return CONSOLE
    return API


VALIDATORS = ("etag", "last-modified")
CACHEABLE = "/tile/"  # where a route's own Cache-Control is kept (see above)


class SecurityHeaders:
    """ASGI middleware: sets the headers above on every HTTP response's start message."""

    def __init__(self, app: ASGIApp, docs_paths: frozenset[str]) -> None:
        self.app = app
        self.docs_paths = docs_paths

    async def __call__(self, scope: Scope, receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        wanted = headers_for(path, self.docs_paths)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name in VALIDATORS:
                    del headers[name]
                kept = headers.get("cache-control") if path.startswith(CACHEABLE) else None
                for name, value in wanted.items():
                    headers[name] = value
                if kept is not None:
                    headers["cache-control"] = kept
            await send(message)

        await self.app(scope, receive, with_headers)


def docs_paths(app: FastAPI) -> frozenset[str]:
    """Where this app serves its OpenAPI document and the pages that show it."""
    paths = {app.openapi_url, app.docs_url, app.redoc_url}
    if app.docs_url and app.swagger_ui_oauth2_redirect_url:
        paths.add(app.swagger_ui_oauth2_redirect_url)
    return frozenset(p for p in paths if p)


def add_security_headers(app: FastAPI) -> None:
    """Wrap ``app``'s whole middleware stack (built on its first request) in SecurityHeaders."""
    build = app.build_middleware_stack

    def build_with_headers() -> ASGIApp:
        return SecurityHeaders(build(), docs_paths(app))

    app.build_middleware_stack = build_with_headers  # type: ignore[method-assign]
