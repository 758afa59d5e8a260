"""Holds on a matter: their scope and its changes over time, notices and acknowledgements,
partial and full release.

A hold's events concern its custodians (``user:<id>``) and never its patients: the patients in
scope are payload fields. An event's payload is sealed under its first subject's key, and
``patient:`` sorts before ``user:``, so a hold naming a patient as a subject would be sealed under
that patient's key and become unreadable the day that patient's record is disposed of, after the
hold is released. The hold is evidence of what was preserved and must outlive what it preserved.

The hold register (one stream with a fixed id) lists every matter and hold, so the disposal gate
can find every hold without scanning the log.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import event
from eventsourcing.persistence import IntegrityError

from domain.base import Record, user_subject
from domain.checks import day, identifier, moment
from domain.checks import text as nonempty
from legal_hold.errors import (
    HoldStateError,
    InvalidHoldEntry,
    MatterStateError,
    NoticeStateError,
)
from legal_hold.matters import Matter, _checked

# What a hold may name as record categories: the audit view's categories of chart data.
CATEGORIES = (
    "demographics",
    "notes",
    "problems",
    "medications",
    "allergies",
    "vitals",
    "labs",
    "amendments",
    "documents",
    "messages",
    "appointments",
    "disclosures",
    "access",
)
DELIVERY_KINDS = ("notice", "reminder", "escalation")
REGISTER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:chartledger:legal-hold-register")


@dataclass(frozen=True)
class Scope:
    """What a hold preserves.

    ``patients`` are named patients; ``all_patients`` extends the hold to every patient's record
    (a practice-wide hold). ``custodians`` are the users who must preserve and are notified.
    ``start``/``end`` (inclusive dates) and ``categories`` narrow what is to be produced; they do
    not narrow the disposal gate, because disposal destroys a patient's whole record at once.
    """

    patients: tuple[UUID, ...] = ()
    custodians: tuple[UUID, ...] = ()
    all_patients: bool = False
    start: date | None = None
    end: date | None = None
    categories: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        patients: Iterable[UUID] = (),
        custodians: Iterable[UUID] = (),
        all_patients: bool = False,
        start: date | None = None,
        end: date | None = None,
        categories: Iterable[str] = (),
    ) -> Scope:
        """A checked scope: ids sorted and distinct, known categories, start on or before end."""
        found_patients = sorted({_checked(identifier, p, "patients") for p in patients}, key=str)
        found_custodians = sorted(
            {_checked(identifier, c, "custodians") for c in custodians}, key=str
        )
        if type(all_patients) is not bool:
            raise InvalidHoldEntry("all_patients must be true or false")
        start = None if start is None else _checked(day, start, "start")
        end = None if end is None else _checked(day, end, "end")
        if start is not None and end is not None and end < start:
            raise InvalidHoldEntry("end is before start")
        chosen = sorted(set(categories))
        unknown = [c for c in chosen if c not in CATEGORIES]
        if unknown:
            raise InvalidHoldEntry(f"categories must be among {', '.join(CATEGORIES)}")
        scope = cls(
            tuple(found_patients),
            tuple(found_custodians),
            all_patients,
            start,
            end,
            tuple(chosen),
        )
        if scope.is_empty:
            raise InvalidHoldEntry("a hold's scope names at least one patient or custodian")
        return scope

    @property
    def is_empty(self) -> bool:
        return not (self.patients or self.custodians or self.all_patients)

    def covers(self, patient_id: UUID) -> bool:
        return self.all_patients or patient_id in self.patients

    def to_payload(self) -> dict[str, Any]:
        return {
            "patients": list(self.patients),
            "custodians": list(self.custodians),
            "all_patients": self.all_patients,
            "start": self.start,
            "end": self.end,
            "categories": list(self.categories),
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Scope:
        return cls(
            patients=tuple(data["patients"]),
            custodians=tuple(data["custodians"]),
            all_patients=data["all_patients"],
            start=data["start"],
            end=data["end"],
            categories=tuple(data["categories"]),
        )


@dataclass
class ScopeChange:
    """One entry of a hold's scope history: the scope in force from ``at``."""

    at: datetime
    by: UUID
    change: str  # placed, changed, partly released, released
    reason: str | None
    scope: Scope


@dataclass
class NoticeVersion:
    version: int
    text: str
    at: datetime
    by: UUID


@dataclass
class Delivery:
    custodian_id: UUID
    version: int
    kind: str  # notice, reminder, escalation (sent to the hold's escalation contact)
    at: datetime


@dataclass
class Acknowledgement:
    custodian_id: UUID
    version: int
    at: datetime


class Hold(Record):
    @classmethod
    def place(
        cls,
        *,
        matter_id: UUID,
        name: str,
        scope: Scope,
        at: datetime,
        by: UUID,
        silent: bool = False,
        reminder_days: int = 7,
        escalation_days: int = 14,
    ) -> Hold:
        """Place a hold on a matter. A silent hold sends no notice to its custodians."""
        if type(silent) is not bool:
            raise InvalidHoldEntry("silent must be true or false")
        for value, name_ in (
            (reminder_days, "reminder_days"),
            (escalation_days, "escalation_days"),
        ):
            if type(value) is not int or value < 1:
                raise InvalidHoldEntry(f"{name_} must be a whole number of days, at least 1")
        if not isinstance(scope, Scope) or scope.is_empty:
            raise InvalidHoldEntry("scope must be a Scope naming a patient or a custodian")
        return cls(
            matter_id=_checked(identifier, matter_id, "matter_id"),
            name=_checked(nonempty, name, "name"),
            scope=scope.to_payload(),
            silent=silent,
            reminder_days=reminder_days,
            escalation_days=escalation_days,
            placed_at=_checked(moment, at, "at"),
            placed_by=_checked(identifier, by, "by"),
        )

    @event("Placed")
    def __init__(
        self,
        matter_id: UUID,
        name: str,
        scope: dict[str, Any],
        silent: bool,
        reminder_days: int,
        escalation_days: int,
        placed_at: datetime,
        placed_by: UUID,
    ) -> None:
        self.matter_id = matter_id
        self.name = name
        self.silent = silent
        self.reminder_days = reminder_days
        self.escalation_days = escalation_days
        self.placed_at = placed_at
        self.placed_by = placed_by
        self.scope = Scope.from_payload(scope)
        self.history = [ScopeChange(placed_at, placed_by, "placed", None, self.scope)]
        self.released_at: datetime | None = None
        self.released_by: UUID | None = None
        self.release_reason: str | None = None
        self.notices: list[NoticeVersion] = []
        self.deliveries: list[Delivery] = []
        self.acknowledgements: list[Acknowledgement] = []

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(c) for c in self.scope.custodians)

    # -- state ----------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.released_at is None

    def covers(self, patient_id: UUID) -> bool:
        return self.active and self.scope.covers(patient_id)

    @property
    def current_version(self) -> int | None:
        return self.notices[-1].version if self.notices else None

    def _check_active(self) -> None:
        if not self.active:
            raise HoldStateError(f"hold {self.id} was released")

    def _check_time(self, at: datetime) -> datetime:
        at = _checked(moment, at, "at")
        if at < self.history[-1].at:
            raise InvalidHoldEntry("at is before the hold's last change")
        return at

    # -- scope ----------------------------------------------------------------------------------

    def change_scope(self, *, scope: Scope, reason: str, at: datetime, by: UUID) -> None:
        """Replace the scope (widen or narrow it); the history keeps every scope in force."""
        self._check_active()
        if not isinstance(scope, Scope) or scope.is_empty:
            raise InvalidHoldEntry("scope must be a Scope naming a patient or a custodian")
        if scope == self.scope:
            raise HoldStateError(f"hold {self.id} already has this scope")
        self._change_scope(
            scope=scope.to_payload(),
            reason=_checked(nonempty, reason, "reason"),
            at=self._check_time(at),
            by=_checked(identifier, by, "by"),
        )

    @event("ScopeChanged")
    def _change_scope(self, scope: dict[str, Any], reason: str, at: datetime, by: UUID) -> None:
        self.scope = Scope.from_payload(scope)
        self.history.append(ScopeChange(at, by, "changed", reason, self.scope))

    def release(
        self,
        *,
        reason: str,
        at: datetime,
        by: UUID,
        patients: Iterable[UUID] = (),
        custodians: Iterable[UUID] = (),
    ) -> None:
        """Release the whole hold, or (naming patients and/or custodians) only part of it."""
        self._check_active()
        reason = _checked(nonempty, reason, "reason")
        at = self._check_time(at)
        by = _checked(identifier, by, "by")
        patients = sorted({_checked(identifier, p, "patients") for p in patients}, key=str)
        custodians = sorted({_checked(identifier, c, "custodians") for c in custodians}, key=str)
        if not patients and not custodians:
            self._release(reason=reason, at=at, by=by)
            return
        outside = [p for p in patients if p not in self.scope.patients] + [
            c for c in custodians if c not in self.scope.custodians
        ]
        if outside:
            raise HoldStateError(f"hold {self.id} does not name {outside[0]} in its scope")
        left = Scope(
            tuple(p for p in self.scope.patients if p not in patients),
            tuple(c for c in self.scope.custodians if c not in custodians),
            self.scope.all_patients,
            self.scope.start,
            self.scope.end,
            self.scope.categories,
        )
        if left.is_empty:
            raise HoldStateError(
                f"releasing these would leave hold {self.id} with an empty scope: "
                "release the whole hold instead"
            )
        self._release_part(patients=patients, custodians=custodians, reason=reason, at=at, by=by)

    @event("PartlyReleased")
    def _release_part(
        self,
        patients: list[UUID],
        custodians: list[UUID],
        reason: str,
        at: datetime,
        by: UUID,
    ) -> None:
        s = self.scope
        self.scope = Scope(
            tuple(p for p in s.patients if p not in patients),
            tuple(c for c in s.custodians if c not in custodians),
            s.all_patients,
            s.start,
            s.end,
            s.categories,
        )
        self.history.append(ScopeChange(at, by, "partly released", reason, self.scope))

    @event("Released")
    def _release(self, reason: str, at: datetime, by: UUID) -> None:
        self.released_at = at
        self.released_by = by
        self.release_reason = reason
        self.history.append(ScopeChange(at, by, "released", reason, self.scope))

    # -- notices --------------------------------------------------------------------------------

    def issue_notice(self, *, text: str, at: datetime, by: UUID) -> int:
        """Issue (or re-issue) the notice; every custodian must acknowledge the new version.
        Earlier versions and their acknowledgements are kept. Returns the new version."""
        self._check_active()
        if self.silent:
            raise HoldStateError(f"hold {self.id} is silent: it sends no notices")
        if not self.scope.custodians:
            raise HoldStateError(f"hold {self.id} has no custodians to notify")
        at = _checked(moment, at, "at")
        version = len(self.notices) + 1
        self._issue_notice(
            version=version, text=_checked(nonempty, text, "text"), at=at, by=identifier(by, "by")
        )
        return version

    @event("NoticeIssued")
    def _issue_notice(self, version: int, text: str, at: datetime, by: UUID) -> None:
        self.notices.append(NoticeVersion(version, text, at, by))

    def record_delivery(self, *, custodian_id: UUID, kind: str, at: datetime) -> None:
        """Record that the current notice (or a reminder, or an escalation about this custodian)
        went out. The outbox does the sending; this is the ledger's account of it."""
        self._check_active()
        version = self.current_version
        if version is None or self.silent:
            raise HoldStateError(f"hold {self.id} has no notice to send")
        if custodian_id not in self.scope.custodians:
            raise NoticeStateError(f"user {custodian_id} is not a custodian of hold {self.id}")
        if kind not in DELIVERY_KINDS:
            raise InvalidHoldEntry(f"kind must be one of {', '.join(DELIVERY_KINDS)}")
        self._record_delivery(
            custodian_id=custodian_id, version=version, kind=kind, at=_checked(moment, at, "at")
        )

    @event("NoticeSent")
    def _record_delivery(self, custodian_id: UUID, version: int, kind: str, at: datetime) -> None:
        self.deliveries.append(Delivery(custodian_id, version, kind, at))

    def acknowledge(self, *, custodian_id: UUID, version: int, at: datetime) -> None:
        """A custodian acknowledges the notice version they were sent (only the current one)."""
        self._check_active()
        custodian_id = _checked(identifier, custodian_id, "custodian_id")
        if custodian_id not in self.scope.custodians:
            raise NoticeStateError(f"user {custodian_id} is not a custodian of hold {self.id}")
        current = self.current_version
        if current is None:
            raise NoticeStateError(f"hold {self.id} has issued no notice")
        if version != current:
            raise NoticeStateError(
                f"notice version {version} of hold {self.id} is not the current one ({current})"
            )
        if self.acknowledged_at(custodian_id, version) is not None:
            raise NoticeStateError(f"user {custodian_id} already acknowledged version {version}")
        self._acknowledge(custodian_id=custodian_id, version=version, at=_checked(moment, at, "at"))

    @event("NoticeAcknowledged")
    def _acknowledge(self, custodian_id: UUID, version: int, at: datetime) -> None:
        self.acknowledgements.append(Acknowledgement(custodian_id, version, at))

    def acknowledged_at(self, custodian_id: UUID, version: int) -> datetime | None:
        for ack in self.acknowledgements:
            if ack.custodian_id == custodian_id and ack.version == version:
                return ack.at
        return None


class HoldRegister(Record):
    """Every matter and hold, in the order they were made: one stream with a fixed id."""

    @staticmethod
    def create_id() -> UUID:
        return REGISTER_ID

    @event("Started")
    def __init__(self) -> None:
        self.matters: list[UUID] = []
        self.holds: list[tuple[UUID, UUID]] = []  # (hold id, matter id)

    def list_matter(self, matter_id: UUID) -> None:
        self._list_matter(matter_id=matter_id)

    @event("MatterListed")
    def _list_matter(self, matter_id: UUID) -> None:
        self.matters.append(matter_id)

    def list_hold(self, hold_id: UUID, matter_id: UUID) -> None:
        self._list_hold(hold_id=hold_id, matter_id=matter_id)

    @event("HoldListed")
    def _list_hold(self, hold_id: UUID, matter_id: UUID) -> None:
        self.holds.append((hold_id, matter_id))


# -- Commands through the ledger ---------------------------------------------------------------
# The edge (API or CLI) sets who is acting (``events.context.acting``); these load, command and
# save. Matters and holds are listed in the register in the same save, so two risk managers
# placing holds at once conflict on the register and the second one is tried again.

RETRIES = 5


def load_register(ledger: Application) -> HoldRegister:
    try:
        return ledger.repository.get(REGISTER_ID)  # type: ignore[no-any-return]
    except AggregateNotFoundError:
        return HoldRegister()


def _save_listed(ledger: Application, make: Callable[[HoldRegister], Record]) -> Any:
    for attempt in range(RETRIES):
        register = load_register(ledger)
        made = make(register)
        try:
            ledger.save(made, register)
        except IntegrityError:
            if attempt == RETRIES - 1:
                raise
            continue
        return made
    raise AssertionError("unreachable")


def open_matter(
    ledger: Application, *, name: str, number: str, forum: str | None, at: datetime, by: UUID
) -> Matter:
    Matter.open(name=name, number=number, forum=forum, at=at, by=by)  # checks, before any I/O

    def make(register: HoldRegister) -> Matter:
        matter = Matter.open(name=name, number=number, forum=forum, at=at, by=by)
        register.list_matter(matter.id)
        return matter

    return _save_listed(ledger, make)  # type: ignore[no-any-return]


def get_matter(ledger: Application, matter_id: UUID) -> Matter:
    matter = ledger.repository.get(matter_id)
    if not isinstance(matter, Matter):
        raise AggregateNotFoundError(f"no matter {matter_id}")
    return matter


def get_hold(ledger: Application, hold_id: UUID) -> Hold:
    hold = ledger.repository.get(hold_id)
    if not isinstance(hold, Hold):
        raise AggregateNotFoundError(f"no hold {hold_id}")
    return hold


def matters(ledger: Application) -> list[Matter]:
    return [get_matter(ledger, m) for m in load_register(ledger).matters]


def all_holds(ledger: Application, matter_id: UUID | None = None) -> list[Hold]:
    return [
        get_hold(ledger, h)
        for h, m in load_register(ledger).holds
        if matter_id is None or m == matter_id
    ]


def holds_covering(ledger: Application, patient_id: UUID) -> list[Hold]:
    """The active holds whose scope covers ``patient_id`` (by name or practice-wide)."""
    return [h for h in all_holds(ledger) if h.covers(patient_id)]


def place_hold(
    ledger: Application,
    *,
    matter_id: UUID,
    name: str,
    scope: Scope,
    at: datetime,
    by: UUID,
    silent: bool = False,
    reminder_days: int = 7,
    escalation_days: int = 14,
    notice: str | None = None,
) -> Hold:
    """Place a hold on an open matter, and issue its first notice if one is given (a silent
    hold takes none). The notice goes out with the server's next sending round, or with
    ``holds remind``."""
    if not get_matter(ledger, matter_id).is_open:
        raise MatterStateError(f"matter {matter_id} is closed")
    if notice is not None and silent:
        raise HoldStateError("a silent hold sends no notice")

    def make(register: HoldRegister) -> Hold:
        hold = Hold.place(
            matter_id=matter_id,
            name=name,
            scope=scope,
            at=at,
            by=by,
            silent=silent,
            reminder_days=reminder_days,
            escalation_days=escalation_days,
        )
        if notice is not None:
            hold.issue_notice(text=notice, at=at, by=by)
        register.list_hold(hold.id, matter_id)
        return hold

    return _save_listed(ledger, make)  # type: ignore[no-any-return]


def change_scope(
    ledger: Application, hold_id: UUID, *, scope: Scope, reason: str, at: datetime, by: UUID
) -> Hold:
    hold = get_hold(ledger, hold_id)
    hold.change_scope(scope=scope, reason=reason, at=at, by=by)
    ledger.save(hold)
    return hold


def release_hold(
    ledger: Application,
    hold_id: UUID,
    *,
    reason: str,
    at: datetime,
    by: UUID,
    patients: Iterable[UUID] = (),
    custodians: Iterable[UUID] = (),
) -> Hold:
    hold = get_hold(ledger, hold_id)
    hold.release(reason=reason, at=at, by=by, patients=patients, custodians=custodians)
    ledger.save(hold)
    return hold


def issue_notice(ledger: Application, hold_id: UUID, *, text: str, at: datetime, by: UUID) -> int:
    hold = get_hold(ledger, hold_id)
    version = hold.issue_notice(text=text, at=at, by=by)
    ledger.save(hold)
    return version


def acknowledge(
    ledger: Application, hold_id: UUID, *, custodian_id: UUID, version: int, at: datetime
) -> Hold:
    hold = get_hold(ledger, hold_id)
    hold.acknowledge(custodian_id=custodian_id, version=version, at=at)
    ledger.save(hold)
    return hold


def close_matter(
    ledger: Application, matter_id: UUID, *, reason: str, at: datetime, by: UUID
) -> Matter:
    active = [h.id for h in all_holds(ledger, matter_id) if h.active]
    if active:
        raise MatterStateError(
            f"matter {matter_id} has {len(active)} active hold(s): release them first"
        )
    matter = get_matter(ledger, matter_id)
    matter.close(reason=reason, at=at, by=by)
    ledger.save(matter)
    return matter
