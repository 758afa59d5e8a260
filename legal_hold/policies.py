"""The practice's retention configuration: its floor, and the named, versioned policies its
owners adopted. Disposal and retention runs name one of these (``name`` and ``version``); a
policy given with the request is never used, so nobody can dispose under rules they made up.

**The floor** is set once, at ``chartledger init``: the least any policy may keep a record
(``adult_years`` after the last encounter; for a patient who was a minor then, ``minor_years``
after reaching ``majority_age``). A policy is at or above the floor when every one of its rules
keeps adults and minors at least as long and its majority age is no younger; since a record's
retention only grows with each of those numbers (``Policy.retain_until``), such a policy keeps
every record at least as long as the floor would. Practices made before the floor existed get
``DEFAULT_FLOOR``, recorded with their first adoption.

The book is one stream with a fixed id and no subjects (sealed under the practice's key, like a
matter): practice configuration outlives every patient and every user.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import event
from eventsourcing.persistence import IntegrityError

from domain.base import Record
from domain.checks import identifier, moment, optional_identifier
from legal_hold.errors import BelowFloor, InvalidHoldEntry, NotAdopted
from legal_hold.matters import _checked
from legal_hold.retention import Policy, Rule

POLICY_BOOK_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:chartledger:retention-policies")
RETRIES = 5


@dataclass(frozen=True)
class Floor:
    """The least retention any adopted policy may give (US defaults: ``DEFAULT_FLOOR``)."""

    adult_years: int
    minor_years: int
    majority_age: int

    def __post_init__(self) -> None:
        for name in ("adult_years", "minor_years"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= 200:
                raise InvalidHoldEntry(f"the floor's {name} must be whole years, 0 to 200")
        if type(self.majority_age) is not int or not 1 <= self.majority_age <= 30:
            raise InvalidHoldEntry("the floor's majority_age must be whole years, 1 to 30")

    def as_policy(self) -> Policy:
        return Policy.simple("floor", self.adult_years, self.minor_years, self.majority_age)

    def shortfalls(self, policy: Policy) -> list[str]:
        """Where ``policy`` keeps less than the floor (empty: at or above it)."""
        found = []
        if policy.majority_age < self.majority_age:
            found.append(f"majority_age {policy.majority_age} < {self.majority_age}")
        for category, rule in sorted(policy.rules.items()):
            if rule.adult_years < self.adult_years:
                found.append(f"{category}: adult_years {rule.adult_years} < {self.adult_years}")
            if rule.minor_years < self.minor_years:
                found.append(f"{category}: minor_years {rule.minor_years} < {self.minor_years}")
        return found

    def to_payload(self) -> dict[str, int]:
        return {
            "adult_years": self.adult_years,
            "minor_years": self.minor_years,
            "majority_age": self.majority_age,
        }


# Most US states keep adults' records 7 to 10 years after the last visit and minors' until some
# years past majority (HIPAA itself asks 6 years of its own documentation): the least of these,
# to be raised at init where the practice's state asks for more.
DEFAULT_FLOOR = Floor(adult_years=7, minor_years=3, majority_age=18)


@dataclass(frozen=True)
class Adoption:
    policy: Policy  # with its version
    adopted_by: UUID
    adopted_at: datetime


def _rules(payload: dict[str, Any]) -> dict[str, Rule]:
    return {c: Rule(r["adult_years"], r["minor_years"]) for c, r in payload.items()}


class PolicyBook(Record):
    """The floor (its creating event) and every adopted policy, in order."""

    @staticmethod
    def create_id() -> UUID:
        return POLICY_BOOK_ID

    @classmethod
    def start(cls, floor: Floor, *, by: UUID | None, at: datetime) -> PolicyBook:
        if not isinstance(floor, Floor):
            raise InvalidHoldEntry("floor must be a Floor")
        return cls(
            adult_years=floor.adult_years,
            minor_years=floor.minor_years,
            majority_age=floor.majority_age,
            by=_checked(optional_identifier, by, "by"),
            at=_checked(moment, at, "at"),
        )

    @event("FloorSet")
    def __init__(
        self, adult_years: int, minor_years: int, majority_age: int, by: UUID | None, at: datetime
    ) -> None:
        self.floor = Floor(adult_years, minor_years, majority_age)
        self.floor_set_by = by
        self.floor_set_at = at
        self.adoptions: list[Adoption] = []

    def next_version(self, name: str) -> int:
        return 1 + sum(1 for a in self.adoptions if a.policy.name == name)

    def adopt(self, policy: Policy, *, by: UUID, at: datetime) -> Policy:
        """Adopt ``policy`` as the next version of its name; refused below the floor."""
        if not isinstance(policy, Policy):
            raise InvalidHoldEntry("policy must be a Policy")
        short = self.floor.shortfalls(policy)
        if short:
            raise BelowFloor(
                f"policy {policy.name} keeps records less than the practice's retention floor "
                f"({'; '.join(short)})"
            )
        version = self.next_version(policy.name)
        self._adopt(
            name=policy.name,
            version=version,
            majority_age=policy.majority_age,
            rules=policy.rules_payload(),
            by=_checked(identifier, by, "by"),
            at=_checked(moment, at, "at"),
        )
        return self.adoptions[-1].policy

    @event("PolicyAdopted")
    def _adopt(
        self,
        name: str,
        version: int,
        majority_age: int,
        rules: dict[str, Any],
        by: UUID,
        at: datetime,
    ) -> None:
        policy = Policy(name, _rules(rules), majority_age, version)
        self.adoptions.append(Adoption(policy, by, at))

    def policy(self, name: object, version: object) -> Policy:
        for adoption in self.adoptions:
            if adoption.policy.name == name and adoption.policy.version == version:
                return adoption.policy
        raise NotAdopted(f"the practice has adopted no policy {name!s} version {version!s}")


def set_floor(ledger: Application, floor: Floor, *, by: UUID | None, at: datetime) -> PolicyBook:
    """Record the practice's floor (at init, once)."""
    book = PolicyBook.start(floor, by=by, at=at)
    ledger.save(book)
    return book


def load_book(ledger: Application, *, at: datetime) -> PolicyBook:
    """The book; for a practice made before floors existed, an unsaved one with the default
    floor (saved with the first adoption)."""
    try:
        return ledger.repository.get(POLICY_BOOK_ID)  # type: ignore[no-any-return]
    except AggregateNotFoundError:
        return PolicyBook.start(DEFAULT_FLOOR, by=None, at=at)


def adopt_policy(ledger: Application, policy: Policy, *, by: UUID, at: datetime) -> Policy:
    """Adopt ``policy`` (the acting owner checked by the caller); the adopted version returned."""
    for attempt in range(RETRIES):
        book = load_book(ledger, at=at)
        adopted = book.adopt(policy, by=by, at=at)
        try:
            ledger.save(book)
        except IntegrityError:
            if attempt == RETRIES - 1:
                raise
            continue
        return adopted
    raise AssertionError("unreachable")


def adopted_policy(ledger: Application, name: object, version: object, *, at: datetime) -> Policy:
    return load_book(ledger, at=at).policy(name, version)


def adoptions(ledger: Application, *, at: datetime) -> Iterable[Adoption]:
    return list(load_book(ledger, at=at).adoptions)
