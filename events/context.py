"""Who is acting: set at the edge (API, CLI) and read by the mapper into every header."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import NamedTuple
from uuid import UUID


class Acting(NamedTuple):
    actor: str | None
    session: str | None
    # Streams appended by someone else than ``actor`` in the same save (``acting_per_stream``).
    by_stream: Mapping[UUID, str] | None = None

    def actor_of(self, stream: UUID) -> str | None:
        return self.actor if self.by_stream is None else self.by_stream.get(stream, self.actor)


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


@contextmanager
def acting_per_stream(
    actors: Mapping[UUID, str], default: str | None, session: str | None = None
) -> Iterator[None]:
    """As ``acting``, with each stream in ``actors`` recorded as appended by its own actor: so
    that one save (one transaction, all or nothing) can hold several people's writes, each
    under their name (``api/demo.py``)."""
    token = _acting.set(Acting(default, session, actors))
    try:
        yield
    finally:
        _acting.reset(token)


def current() -> Acting:
    return _acting.get()
