"""``SECRET_EVENT_TYPES`` names exactly the events whose fields hold a login secret or a hash of
one, so that a new one cannot be produced in an e-discovery bundle by being left off the list."""

from __future__ import annotations

import inspect
import re

from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic, resolve_topic

import domain
import events
import legal_hold
from domain.credentials import SECRET_EVENT_TYPES
from tests.support import aggregates_in

# A field named like a login secret: a password, secret, token, TOTP, recovery or approval code,
# or any hash (clinical codes, such as LOINC's, are no secret).
SECRET_NAME = re.compile(r"hash|secret|password|token|totp|recovery_code|approval_code")
# Named like one, but none: the RFC 6238 time step of the code used at a login (the login's time
# divided by 30 s), which says when, not what.
NOT_SECRET = {"totp_step"}


def event_classes() -> dict[str, type[DomainEvent]]:
    """Every event class of every aggregate in domain/, events/ and legal_hold/, by topic."""
    found: dict[str, type[DomainEvent]] = {}
    for aggregate in aggregates_in(domain, events, legal_hold):
        for cls in vars(aggregate).values():
            if inspect.isclass(cls) and issubclass(cls, DomainEvent):
                found[get_topic(cls)] = cls
    return found


def secret_fields(cls: type[DomainEvent]) -> list[str]:
    names = inspect.signature(cls.__init__).parameters
    return [n for n in names if SECRET_NAME.search(n) and n not in NOT_SECRET]


def test_the_secret_events_are_exactly_those_with_a_secret_field() -> None:
    classes = event_classes()
    assert "domain.credentials:Account.TotpEnrolled" in classes
    with_secrets = {topic for topic, cls in classes.items() if secret_fields(cls)}
    assert with_secrets == SECRET_EVENT_TYPES


def test_each_secret_event_type_is_an_event_of_the_domain() -> None:
    for topic in SECRET_EVENT_TYPES:
        cls = resolve_topic(topic)
        assert inspect.isclass(cls) and issubclass(cls, DomainEvent), topic
        assert secret_fields(cls), topic
