"""The rules of the ``Idempotency-Key`` header, applied around every state-changing request.

1. ``IdempotencyKeys`` (ASGI middleware) parses the key (a malformed one: 400), digests the
   request and opens a ``Claim`` for the handler, whose first append records the key with its
   events (``events/idempotency.py``).
2. ``begin``, once the caller is known (``api/routing.py``), looks the caller's key up: the
   same request answered before gets that answer again (``Replayed``), another request under
   the key 422 (``IdempotencyKeyReused``), one still running 409 (``IdempotencyKeyInFlight``),
   one kept long ago whose answer was never stored 409 (``KeptWithoutAnswer``).
3. After the handler, the middleware stores the answer of a request that wrote (2xx, 3xx) in
   the key's row before sending it; a refusal (4xx) frees the key, since a retry may succeed;
   after a 5xx the row stays without an answer (the write is kept, its answer is not known).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, Header
from starlette.concurrency import run_in_threadpool

from api.errors import (
    PROBLEM_BASE,
    ApiError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    KeptWithoutAnswer,
    Replayed,
    problem,
    response_for,
)
from api.idempotency.answers import Answer, Answers, Row
from api.idempotency.header import InvalidKey, parse_key, request_digest
from events import idempotency
from events.idempotency import Claim

log = logging.getLogger("chartledger.api")

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = b"idempotency-key"
KEPT_HEADERS = frozenset({"content-type", "location"})  # what a repeat answers with again
# A row without its answer is a request still running for this long after its write; after
# that its answer is taken as lost (the server stopped, or the store went away, in between).
IN_FLIGHT = timedelta(seconds=60)
# Storing an answer is retried while the store is away: about 6 s in all (PostgreSQL took
# 2.4 s to restart in issue 23).
RECORD_WAITS = (0.1, 0.2, 0.4, 0.8, 1.6, 3.2)


def begin(answers: Answers, caller: str) -> None:
    """The caller's keyed request may run, or raise the answer it gets instead."""
    claim = idempotency.current()
    if claim is None:
        return
    claim.caller = caller
    row = answers.find(caller, claim.key, claim.created)
    if row is not None:
        raise verdict(claim, row)


def verdict(claim: Claim, row: Row) -> ApiError:
    """What a request gets when its key is already taken by ``row``."""
    if row.digest != claim.digest:
        return IdempotencyKeyReused(
            "this Idempotency-Key was sent before with another request (method, path, query "
            "or body): use a new key for a new request"
        )
    if row.answer is not None:
        return Replayed(row.answer.status, row.answer.headers, row.answer.body)
    if row.token != claim.token and claim.created - row.created < IN_FLIGHT.total_seconds():
        return IdempotencyKeyInFlight(
            "a request with this Idempotency-Key is still being processed: try again shortly"
        )
    return KeptWithoutAnswer(
        f"this request was kept (its first event is at log position {row.position}), but its "
        "answer was not recorded: read the record back rather than sending it again"
    )


# What parse_key takes, as the OpenAPI document states it: an sf-string of 1 to 255 printable
# ASCII characters (only " and \ escaped), or 1 to 255 bare visible ASCII characters but " \ , ;.
KEY_PATTERN = r'^(?:"(?:[ !#-\[\]-~]|\\["\\]){1,255}"|[!#-+\--:<-\[\]-~]{1,255})$'


async def idempotency_key(
    key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="One key per logical write (a UUID, say), the same on every retry of it, "
            'as an RFC 8941 string ("8e03978e-40d5-43e8-bc93-6894a57f9324") or bare. A repeat '
            "with the same request gets the first answer again (header Idempotent-Replayed: "
            "true) and writes nothing; the same key with another request: 422; while the first "
            "is still running: 409 with Retry-After; a malformed key: 400. Keys are the caller's "
            "own and kept 24 hours (docs/IDEMPOTENCY.md).",
            examples=['"8e03978e-40d5-43e8-bc93-6894a57f9324"'],
            pattern=KEY_PATTERN,
        ),
    ] = None,
) -> None:
    """Documents the header in the OpenAPI document; ``IdempotencyKeys`` reads and checks it
    before any route runs (async: no worker thread for a dependency that does nothing)."""


IDEMPOTENCY_KEY = Depends(idempotency_key)


class IdempotencyKeys:
    """ASGI middleware: see the module's docstring. ``lifetime``: how long a key is kept."""

    def __init__(self, app: Any, answers: Answers, lifetime: timedelta) -> None:
        self.app = app
        self.answers = answers
        self.lifetime = lifetime

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope.get("headers") or [] if k.lower() == HEADER]
        if not values:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(values)
        except InvalidKey as e:
            await problem(400, "idempotency-key", "Invalid Idempotency-Key", str(e))(
                scope, receive, send
            )
            return
        body = await _whole_body(receive)
        if body is None:
            return  # the client went away
        now = int(time.time())
        claim = Claim(
            key=key,
            digest=request_digest(scope["method"], scope["path"], scope["query_string"], body),
            token=uuid.uuid4().hex,
            created=now,
            expires=now + int(self.lifetime.total_seconds()),
        )
        with idempotency.claiming(claim):
            await self._keyed(scope, _replay(body, receive), send, claim)

    async def _keyed(self, scope: Any, receive: Any, send: Any, claim: Claim) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def hold(message: dict[str, Any]) -> None:
            # The answer is sent only once it is stored, so a retry never misses it.
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            else:
                await send(message)

        await self.app(scope, receive, hold)
        answer = (start["status"], list(start.get("headers", [])), b"".join(chunks))
        try:
            status, headers, body = await self._settle(claim, *answer)
        except Exception as e:  # the store went away: the key stays as it is, the answer goes
            log.error("idempotency key not settled after %s: %s", answer[0], type(e).__name__)
            status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _settle(
        self, claim: Claim, status: int, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Keep or free the key by the handler's answer; the answer to send."""
        answers = self.answers
        if not claim.claimed and claim.caller is not None and _conflict(status, body):
            # Another request under this key appended first (the key's row refused ours).
            row = await run_in_threadpool(answers.find, claim.caller, claim.key, claim.created)
            if row is not None:
                return _as_answer(verdict(claim, row))
        elif claim.claimed and status < 400:
            await _record(answers, claim, Answer(status, _kept(headers), body))
        elif claim.claimed and status < 500:
            await run_in_threadpool(answers.give_up, claim)
        return status, headers, body


def _conflict(status: int, body: bytes) -> bool:
    if status != 409:
        return False
    try:
        return json.loads(body).get("type") == PROBLEM_BASE + "conflict"
    except (ValueError, AttributeError):
        return False


def _as_answer(error: ApiError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    response = response_for(error)
    return response.status_code, list(response.raw_headers), bytes(response.body)


def _kept(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode(), v.decode()) for k, v in headers if k.decode().lower() in KEPT_HEADERS]


async def _record(answers: Answers, claim: Claim, answer: Answer) -> None:
    for wait in (*RECORD_WAITS, None):
        try:
            await run_in_threadpool(answers.record, claim, answer)
            return
        except Exception as e:  # the store is away: the answer still goes to the client
            if wait is None:
                log.error("answer to a keyed request not recorded: %s", type(e).__name__)
                return
            await asyncio.sleep(wait)


async def _whole_body(receive: Any) -> bytes | None:
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
