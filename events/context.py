"""Who is acting: set at the edge (API, CLI) and read by the mapper into every header."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple


class Acting(NamedTuple):
    actor: str | None
    session: str | None


_NOBODY = Acting(None, None)
_acting: ContextVar[Acting] = ContextVar("acting", default=_NOBODY)


@contextmanager
def acting(actor: str | None, session: str | None = None) -> Iterator[None]:
    """Record ``actor`` (``user:<id>``) and ``session`` on every event appended inside."""
    token = _acting.set(Acting(actor, session))
    try:
        yield
    finally:
        _acting.reset(token)


def current() -> Acting:
    return _acting.get()
