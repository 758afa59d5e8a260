"""How the thin client retries a write: on a lost connection, a 503, or its own key still in
flight, with the same Idempotency-Key each time, so the server keeps the write once
(docs/IDEMPOTENCY.md). Bounded exponential backoff; a server's ``Retry-After`` is honoured up
to the same bound. Only the transport and these answers are retried, nothing else."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
IN_FLIGHT = "urn:chartledger:problem:idempotency-key-in-flight"


class Unanswered(httpx.TransportError):
    """No answer to a write after every retry: the server may or may not have kept it."""


@dataclass(frozen=True)
class Retry:
    """``attempts`` tries in all, waiting ``first`` seconds after the first failure, twice as
    long after each next one, never more than ``longest`` (Retry-After included)."""

    attempts: int = 6
    first: float = 0.5
    longest: float = 8.0
    sleep: Callable[[float], None] | None = field(default=None, repr=False)  # time.sleep

    def send(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        headers: dict[str, str],
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        wait, sleep = self.first, self.sleep or time.sleep
        for attempt in range(1, self.attempts + 1):
            last = attempt == self.attempts
            try:
                response = http.request(method, path, headers=headers, **kwargs)
            except httpx.UnsupportedProtocol:
                raise  # no server to retry: the URL is wrong
            except httpx.TransportError as e:
                if last:
                    reason = str(e) or type(e).__name__
                    raise Unanswered(
                        f"no answer to {method} {path} after {attempt} tries ({reason}); "
                        "the server may have kept it: check before sending it again"
                    ) from e
                sleep(wait)
            else:
                if last or not _worth_retrying(response):
                    return response
                sleep(min(_retry_after(response, wait), self.longest))
            wait = min(wait * 2, self.longest)
        raise AssertionError("unreachable")  # the last attempt returns or raises


def _worth_retrying(response: httpx.Response) -> bool:
    if response.status_code == 503:
        return True
    if response.status_code != 409:
        return False
    try:
        return bool(response.json().get("type") == IN_FLIGHT)
    except (ValueError, AttributeError):
        return False


def _retry_after(response: httpx.Response, otherwise: float) -> float:
    return retry_after(response.headers.get("Retry-After", ""), otherwise, time.time())


def retry_after(value: str, otherwise: float, now: float) -> float:
    """Seconds to wait by a ``Retry-After`` value (RFC 9110 §10.2.3: delay-seconds, or an
    HTTP-date), or ``otherwise`` if it is neither."""
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return otherwise
    if when.tzinfo is None:  # "-0000" in an HTTP-date's place: not a date a server sends
        return otherwise
    return max(0.0, when.timestamp() - now)
