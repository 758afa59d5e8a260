"""docs/DOMAIN_EVENTS.md names every event the domain emits, and every refused action."""

from __future__ import annotations

import inspect
from pathlib import Path

from eventsourcing.domain import AggregateCreated, DomainEvent

import domain
from domain.credentials import ADMIN_ACTIONS
from tests.support import aggregates_in

DOC = Path(__file__).resolve().parents[3] / "docs" / "DOMAIN_EVENTS.md"


def emitted_events() -> list[str]:
    """``Aggregate.Event`` for each event class an aggregate in domain/ can emit: those of its
    decorated commands and its creating event (the library's default ``Created`` only when it is
    the creating one, as for ``Practice``)."""
    found = []
    for aggregate in aggregates_in(domain):
        if "__init__" not in vars(aggregate):  # a shared base (Record) creates nothing
            continue
        events = {
            name: cls
            for name, cls in vars(aggregate).items()
            if inspect.isclass(cls) and issubclass(cls, DomainEvent) and name != "Event"
        }
        created = [n for n, c in events.items() if issubclass(c, AggregateCreated)]
        for name in events:
            if name == "Created" and len(created) > 1:
                continue  # the library's default, replaced by the named creating event
            found.append(f"{aggregate.__name__}.{name}")
    return sorted(found)


def test_every_event_of_the_domain_is_documented() -> None:
    doc = DOC.read_text()
    events = emitted_events()
    assert "Account.RecoveryCodesIssued" in events and "Practice.Created" in events
    assert "Account.Created" not in events and "Record.Created" not in events
    assert [e for e in events if f"`{e}`" not in doc] == []


def test_every_refused_action_is_documented() -> None:
    doc = DOC.read_text()
    assert [a for a in ADMIN_ACTIONS if f"`{a}`" not in doc] == []
