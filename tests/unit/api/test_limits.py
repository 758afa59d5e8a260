"""The request bounds as ASGI middleware, driven message by message as a server would: the body
passes through chunk by chunk (never gathered first), the count stops an app mid-body, and each
refusal is a problem document; the bounds come from the environment."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from api.errors import BodyTooLarge
from api.limits import Limits, RequestLimits
from api.settings import Settings
from events.config import ConfigError

CHUNK = b"x" * 1_000


class Server:
    """Hands the app one body chunk at a time, and counts how many it has handed out."""

    def __init__(self, chunks: int, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.left = chunks
        self.handed = 0
        self.sent: list[dict[str, Any]] = []
        self.headers = headers or []

    async def receive(self) -> dict[str, Any]:
        if self.left == 0:
            return {"type": "http.disconnect"}
        self.left -= 1
        self.handed += 1
        return {"type": "http.request", "body": CHUNK, "more_body": self.left > 0}

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    def call(self, app: Any, path: str = "/documents", query: bytes = b"") -> tuple[int, Any]:
        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "query_string": query,
            "headers": [(b"content-type", b"application/octet-stream"), *self.headers],
        }
        asyncio.run(app(scope, self.receive, self.send))
        status = next(m["status"] for m in self.sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")
        return status, json.loads(body)


def reader(seen: list[int], server: Server) -> Any:
    """An app that reads the body as a streaming route does, noting how many chunks the
    server had handed out when each arrived."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        more = True
        while more:
            message = await receive()
            seen.append(server.handed)
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(len(seen)).encode()})

    return app


def test_the_body_passes_through_chunk_by_chunk_without_being_gathered() -> None:
    server, seen = Server(chunks=50), []
    app = RequestLimits(reader(seen, server), Limits(max_upload_bytes=100 * len(CHUNK)))
    assert server.call(app) == (201, 50)
    assert seen == list(range(1, 51))  # each chunk reached the app as soon as it was handed out


def test_the_count_stops_the_app_as_soon_as_the_body_passes_its_limit() -> None:
    server, seen = Server(chunks=1_000), []
    app = RequestLimits(reader(seen, server), Limits(max_upload_bytes=10 * len(CHUNK)))
    status, problem = server.call(app)
    assert (status, problem["type"]) == (413, "urn:chartledger:problem:too-large")
    assert server.handed == 11  # the chunk that passed the limit was the last one read
    assert seen == list(range(1, 11))


def test_a_declared_length_over_the_limit_is_refused_before_the_app_runs() -> None:
    server, seen = Server(chunks=3, headers=[(b"content-length", b"3001")]), []
    app = RequestLimits(reader(seen, server), Limits(max_upload_bytes=3_000))
    status, _ = server.call(app)
    assert (status, server.handed, seen) == (413, 0, [])


def test_uploads_have_their_own_limit_and_the_rest_the_small_one() -> None:
    limits = Limits(max_body_bytes=10, max_upload_bytes=1_000)
    assert limits.body_limit("POST", "/documents") == 1_000
    assert limits.body_limit("POST", "/imports/labs") == 1_000
    assert limits.body_limit("POST", "/threads/0f7e/email") == 1_000  # attachments and all
    assert limits.body_limit("POST", "/threads/0f7e/sms") == 10
    assert limits.body_limit("POST", "/imports/labs/more") == 10
    assert limits.body_limit("POST", "/documents-and-more") == 10
    assert limits.body_limit("PUT", "/documents") == 10
    assert limits.body_limit("POST", "/patients") == 10


def test_a_refusal_raised_outside_fastapi_still_answers_a_problem() -> None:
    async def raising(scope: Any, receive: Any, send: Any) -> None:
        raise BodyTooLarge("the body is larger than 1 bytes")

    status, problem = Server(chunks=1).call(RequestLimits(raising, Limits()))
    assert (status, problem["status"]) == (413, 413)


def test_a_deep_query_value_is_refused_before_the_app_runs() -> None:
    server, seen = Server(chunks=1), []
    app = RequestLimits(reader(seen, server), Limits(max_json_depth=3))
    status, problem = server.call(app, query=b"a=1&map=%7B%22x%22%3A%5B%5B%5B1%5D%5D%5D%7D")
    assert (status, problem["type"], seen) == (400, "urn:chartledger:problem:too-deep", [])
    server, seen = Server(chunks=1), []
    app = RequestLimits(reader(seen, server), Limits(max_json_depth=3))
    assert server.call(app, query=b"map=%5B%5B%5B1%5D%5D%5D") == (201, 1)


def test_the_bounds_are_settings_from_the_environment(tmp_path: Path) -> None:
    home = {"CHARTLEDGER_HOME": str(tmp_path)}
    assert Settings.from_env(home).limits == Limits(1_048_576, 52_428_800, 16_384, 64)
    env = {
        **home,
        "CHARTLEDGER_MAX_BODY_BYTES": "2000",
        "CHARTLEDGER_MAX_UPLOAD_BYTES": "200000000",
        "CHARTLEDGER_MAX_HEADER_BYTES": "8192",
        "CHARTLEDGER_MAX_JSON_DEPTH": "16",
    }
    assert Settings.from_env(env).limits == Limits(2_000, 200_000_000, 8_192, 16)
    for name in ("CHARTLEDGER_MAX_BODY_BYTES", "CHARTLEDGER_MAX_JSON_DEPTH"):
        for value in ("1 MiB", "0", "-5"):
            with pytest.raises(ConfigError, match=name):
                Settings.from_env({**home, name: value})
