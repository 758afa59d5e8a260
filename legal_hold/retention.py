"""Retention policy, the disposal run, and the gate where holds always win.

A patient's record is disposed of whole, by destroying the patient's data key (crypto-shredding,
LEDGER_FORMAT.md §4.3): the sealed payloads, headers and every proof stay as they were, so the
log still verifies and the audit trail still shows every event's metadata; no payload of the
patient's sealed before the disposal can be opened again by anyone, the practice included.

**Policy.** One rule per record category (``"*"`` for the rest): adults are kept ``adult_years``
after their last encounter; a patient who was a minor at any encounter (their first) is kept until
the later of that and ``minor_years`` after reaching majority, so a record holding care given in
minority keeps the minor rule, and a later encounter never brings its disposal forward. A record
is eligible once every category it holds is past its rule. The last (first) encounter is the
latest (earliest) ``recorded`` time of the patient's events other than reads (header metadata,
readable without any key).

**The gate.** A patient in scope of any active hold is refused (``UnderLegalHold``) and the
refusal is itself a ledger event (``DisposalRefusal.Refused``). A hold covers a patient when it
names them, when it is practice-wide, or when one of its custodians acted in the patient's record
or is a subject of it (``holds_on``): disposal would destroy what that custodian wrote, sent or
read there, so a custodian-only hold preserves every record its custodians touched. A hold's dates
and categories narrow what is produced, never the gate. The check is made again inside
the disposal's own append transaction, under the writer lock every append takes, so a hold placed
(or widened) while a disposal is prepared either committed before the check, and is seen, or
commits after the key is gone. Holds and patients are many-to-many: disposal is allowed again
only once the last hold covering the patient is released (or releases the patient).

**The ``Disposed`` event is not about the patient.** Its subjects are only the acting user, and
the patient's id and the destroyed key names are payload fields. An event's payload is sealed
under its first subject's key and ``patient:`` sorts before ``user:``: naming the patient as a
subject would seal the disposal record under a fresh key of the very patient it disposed of,
give them a live key again, and make the disposal itself disposable by the next run. Sealed under
the user's key, it stays readable, and ``disposal_of_key`` tells any reader that a payload it
cannot open was "disposed under policy P on date D by user U".
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

from domain.base import Record, patient_subject, user_subject
from domain.categories import RECORD_CATEGORIES
from domain.checks import identifier, moment
from events.db import Cursor
from events.ledger import Ledger
from events.sealing import destroy_data_keys, owned_key_names
from legal_hold.errors import (
    DisposalContended,
    InvalidHoldEntry,
    NotEligible,
    NothingToDispose,
    UnderLegalHold,
)
from legal_hold.holds import Hold, all_holds
from legal_hold.matters import _checked
from verify.canonical import parse_timestamp
from verify.records import parse_header, split_record

DISPOSAL_REGISTER_ID = uuid.uuid5(uuid.NAMESPACE_URL, "urn:chartledger:disposal-register")
# The record category of each event type, by module (reads are their own category).
CATEGORY_OF_MODULE = {**RECORD_CATEGORIES, "domain.access": "access"}
NOT_ENCOUNTERS = {"domain.access:Access.Recorded"}  # reading a chart is not an encounter
ATTEMPTS = 5  # plans of a disposal before giving up while the record keeps changing


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Rule:
    adult_years: int
    minor_years: int  # after reaching majority


@dataclass(frozen=True)
class Policy:
    """A named retention policy: a rule per record category (``"*"``: every other category)."""

    name: str
    rules: Mapping[str, Rule]
    majority_age: int = 18
    version: int | None = None  # set once the practice adopted it (legal_hold/policies.py)

    def __post_init__(self) -> None:
        if type(self.name) is not str or not self.name.strip():
            raise InvalidHoldEntry("a policy needs a name")
        if type(self.majority_age) is not int or not 1 <= self.majority_age <= 30:
            raise InvalidHoldEntry("a policy's majority_age is a whole number of years, 1 to 30")
        for category, rule in self.rules.items():
            for years in (rule.adult_years, rule.minor_years):
                if type(years) is not int or years < 0:
                    raise InvalidHoldEntry(f"policy rule for {category} needs whole years >= 0")
        if "*" not in self.rules:
            raise InvalidHoldEntry("a policy needs a '*' rule for the categories it does not name")

    @classmethod
    def simple(
        cls, name: str, adult_years: int, minor_years: int, majority_age: int = 18
    ) -> Policy:
        return cls(name, {"*": Rule(adult_years, minor_years)}, majority_age)

    def rule(self, category: str) -> Rule:
        return self.rules.get(category, self.rules["*"])

    def retain_until(
        self,
        categories: Iterable[str],
        birth_date: date,
        last_encounter: date,
        first_encounter: date | None = None,
    ) -> date:
        majority = add_years(birth_date, self.majority_age)
        # A minor at any encounter: the earliest one, when known.
        minor = min(last_encounter, first_encounter or last_encounter) < majority
        until = last_encounter
        for category in set(categories) or {"*"}:
            rule = self.rule(category)
            kept = add_years(last_encounter, rule.adult_years)
            if minor:
                kept = max(kept, add_years(majority, rule.minor_years))
            until = max(until, kept)
        return until

    @property
    def label(self) -> str:
        return self.name if self.version is None else f"{self.name} v{self.version}"

    def rules_payload(self) -> dict[str, dict[str, int]]:
        return {
            c: {"adult_years": r.adult_years, "minor_years": r.minor_years}
            for c, r in self.rules.items()
        }

    def to_payload(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "name": self.name,
            "majority_age": self.majority_age,
            "rules": self.rules_payload(),
        }
        if self.version is not None:
            found["version"] = self.version
        return found


# -- Aggregates ---------------------------------------------------------------------------------


class Disposal(Record):
    """A patient's record disposed of: which keys, under which policy, by whom, when."""

    @event("Disposed")
    def __init__(
        self,
        patient_id: UUID,
        policy: dict[str, Any],
        retain_until: date,
        key_names: list[str],
        by: UUID,
        at: datetime,
        proposal_id: UUID | None = None,
    ) -> None:
        self.patient_id = patient_id
        self.policy = policy
        self.retain_until = retain_until
        self.key_names = list(key_names)
        self.by = by
        self.at = at
        # The two-person proposal this disposal executes (legal_hold/disposal_approvals.py);
        # None only in disposals recorded before proposals existed.
        self.proposal_id = proposal_id

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.by),)

    @property
    def policy_name(self) -> str:
        return str(self.policy["name"])

    @property
    def policy_label(self) -> str:
        version = self.policy.get("version")
        return self.policy_name if version is None else f"{self.policy_name} v{version}"

    def describe(self) -> str:
        return f"disposed under policy {self.policy_label} on {self.at.date()} by user {self.by}"


class DisposalRefusal(Record):
    """A disposal refused because holds cover the patient."""

    @event("Refused")
    def __init__(
        self, patient_id: UUID, hold_ids: list[UUID], policy_name: str, by: UUID, at: datetime
    ) -> None:
        self.patient_id = patient_id
        self.hold_ids = list(hold_ids)
        self.policy_name = policy_name
        self.by = by
        self.at = at

    def ledger_subjects(self) -> Iterable[str]:
        return (user_subject(self.by),)


class DisposalRegister(Record):
    """Every disposal, in order: one stream with a fixed id."""

    @staticmethod
    def create_id() -> UUID:
        return DISPOSAL_REGISTER_ID

    @event("Started")
    def __init__(self) -> None:
        self.disposals: list[tuple[UUID, UUID]] = []  # (disposal id, patient id)

    def list_disposal(self, disposal_id: UUID, patient_id: UUID) -> None:
        self._list(disposal_id=disposal_id, patient_id=patient_id)

    @event("Listed")
    def _list(self, disposal_id: UUID, patient_id: UUID) -> None:
        self.disposals.append((disposal_id, patient_id))


# -- Reading a patient's record from the headers -----------------------------------------------


@dataclass
class PatientRecord:
    patient_id: UUID
    live_keys: list[str]  # the patient's data keys the store still holds
    last_encounter: datetime | None
    first_encounter: datetime | None = None
    categories: set[str] = field(default_factory=set)
    events: int = 0
    users: set[UUID] = field(default_factory=set)  # who acted in it or is a subject of it


def patient_ids(ledger: Ledger) -> list[UUID]:
    """Every patient any event concerns."""
    with ledger.db.read() as c:
        c.execute("SELECT DISTINCT subject FROM ledger_links WHERE subject LIKE 'patient:%'")
        return sorted(UUID(row[0].partition(":")[2]) for row in c.fetchall())


def patient_record(ledger: Ledger, patient_id: UUID) -> PatientRecord:
    subject = patient_subject(patient_id)
    with ledger.db.read() as c:
        live = owned_key_names(c, subject)
        c.execute(
            "SELECT e.state FROM ledger_links k "
            "JOIN ledger_leaves l ON l.position = k.position "
            "JOIN stored_events e ON e.originator_id = l.stream "
            "AND e.originator_version = l.version "
            "WHERE k.subject = ? ORDER BY k.seq",
            (subject,),
        )
        states = [bytes(row[0]) for row in c.fetchall()]
    record = PatientRecord(patient_id, live, None)
    for state in states:
        header = parse_header(split_record(state)[0])
        if header.key not in live:
            continue  # disposed of already (or sealed under another subject's key)
        record.events += 1
        for who in (header.actor, *header.subjects):
            if who and who.startswith("user:"):
                record.users.add(UUID(who.partition(":")[2]))
        module = header.type.partition(":")[0]
        if module in CATEGORY_OF_MODULE:
            record.categories.add(CATEGORY_OF_MODULE[module])
        if header.type not in NOT_ENCOUNTERS:
            recorded = parse_timestamp(header.recorded)
            if record.last_encounter is None or recorded > record.last_encounter:
                record.last_encounter = recorded
            if record.first_encounter is None or recorded < record.first_encounter:
                record.first_encounter = recorded
    return record


def eligibility(
    policy: Policy,
    categories: Iterable[str],
    birth_date: date,
    encounters: tuple[date, date],
    on: date,
) -> tuple[date, bool]:
    """Until when ``policy`` keeps the record (``encounters``: its first and last), and whether
    it may be disposed of ``on`` that day (from ``retain_until`` itself on)."""
    first, last = encounters
    until = policy.retain_until(categories, birth_date, last, first)
    return until, on >= until


@dataclass(frozen=True)
class Candidate:
    patient_id: UUID
    last_encounter: datetime | None
    retain_until: date | None  # None: cannot tell (no readable registration, no encounter)
    eligible: bool  # the policy allows disposal at the time asked about
    held_by: tuple[UUID, ...]  # active holds covering the patient: they win

    @property
    def disposable(self) -> bool:
        return self.eligible and not self.held_by


def _birth_date(ledger: Application, patient_id: UUID) -> date | None:
    try:
        patient = ledger.repository.get(patient_id)
    except (AggregateNotFoundError, LookupError):
        return None
    return getattr(patient, "birth_date", None)


def holds_on(ledger: Ledger, record: PatientRecord) -> list[Hold]:
    """The active holds that preserve something in ``record``: those naming the patient or every
    patient, and those with a custodian who acted in the record or is a subject of it."""
    return [
        h
        for h in all_holds(ledger)
        if h.covers(record.patient_id) or (h.active and record.users & set(h.scope.custodians))
    ]


def assess(ledger: Ledger, patient_id: UUID, policy: Policy, *, at: datetime) -> Candidate:
    record = patient_record(ledger, patient_id)
    held = tuple(h.id for h in holds_on(ledger, record))
    if not record.live_keys or record.events == 0:
        return Candidate(patient_id, record.last_encounter, None, False, held)
    birth = _birth_date(ledger, patient_id)
    if birth is None or record.last_encounter is None:
        return Candidate(patient_id, record.last_encounter, None, False, held)
    first = record.first_encounter or record.last_encounter
    until, eligible = eligibility(
        policy, record.categories, birth, (first.date(), record.last_encounter.date()), at.date()
    )
    return Candidate(patient_id, record.last_encounter, until, eligible, held)


def disposal_run(ledger: Ledger, policy: Policy, *, at: datetime) -> list[Candidate]:
    """Every patient with readable content, and whether the policy allows disposal at ``at``
    (``disposable``: eligible and under no active hold)."""
    found = []
    for patient_id in patient_ids(ledger):
        candidate = assess(ledger, patient_id, policy, at=at)
        if candidate.retain_until is not None or candidate.held_by:
            found.append(candidate)
    return found


# -- Disposal -----------------------------------------------------------------------------------


class _KeysMoved(Exception):
    """The patient's keys changed between planning and the lock: plan again."""


def _refuse(
    ledger: Ledger, patient_id: UUID, hold_ids: list[UUID], policy: Policy, by: UUID, at: datetime
) -> UnderLegalHold:
    ledger.save(
        DisposalRefusal(
            patient_id=patient_id, hold_ids=hold_ids, policy_name=policy.label, by=by, at=at
        )
    )
    return UnderLegalHold(patient_id, hold_ids)


def dispose(
    ledger: Ledger,
    patient_id: UUID,
    *,
    policy: Policy,
    by: UUID,
    at: datetime,
    proposal_id: UUID | None = None,
    with_disposal: Callable[[Disposal], Iterable[Aggregate]] | None = None,
) -> Disposal:
    """Dispose of the patient's record: destroy their data key and record ``Disposed``, in one
    transaction under the writer lock, refusing if any active hold covers them.

    This is the machinery only: who may dispose, under which policy, is decided before it is
    called (``legal_hold/disposal_approvals.py``, the only caller outside tests). The aggregates
    ``with_disposal`` returns (the proposal's approval) are saved in the same append, made anew
    on each attempt, so the approval is on the record exactly when the key is gone."""
    patient_id = _checked(identifier, patient_id, "patient_id")
    by = _checked(identifier, by, "by")
    at = _checked(moment, at, "at")
    subject = patient_subject(patient_id)
    for _attempt in range(ATTEMPTS):
        candidate = assess(ledger, patient_id, policy, at=at)
        if candidate.held_by:
            raise _refuse(ledger, patient_id, list(candidate.held_by), policy, by, at)
        record = patient_record(ledger, patient_id)
        if not record.live_keys:
            raise NothingToDispose(f"patient {patient_id} has no data key left to destroy")
        if not candidate.eligible:
            raise NotEligible(
                f"policy {policy.label} does not allow disposing of patient {patient_id} at "
                f"{at.date()}"
                + (f" (kept until {candidate.retain_until})" if candidate.retain_until else "")
            )
        disposal = Disposal(
            patient_id=patient_id,
            policy=policy.to_payload(),
            retain_until=candidate.retain_until,
            key_names=record.live_keys,
            by=by,
            at=at,
            proposal_id=proposal_id,
        )
        register = _load_register(ledger)
        register.list_disposal(disposal.id, patient_id)
        also = [] if with_disposal is None else list(with_disposal(disposal))

        def destroy(
            cursor: Cursor,
            positions: list[int],
            expected: list[str] = record.live_keys,
            disposal_id: UUID = disposal.id,
        ) -> None:
            # Under the writer lock: no hold (and no event of a custodian) can commit until this
            # transaction ends.
            held = [h.id for h in holds_on(ledger, patient_record(ledger, patient_id))]
            if held:
                raise UnderLegalHold(patient_id, held)
            if owned_key_names(cursor, subject) != expected:
                raise _KeysMoved()
            destroy_data_keys(cursor, ledger.db.dialect, expected, disposal_id)

        try:
            ledger.save(disposal, register, *also, after_append=destroy)
        except UnderLegalHold as held:
            raise _refuse(ledger, patient_id, held.hold_ids, policy, by, at) from None
        except (_KeysMoved, IntegrityError):
            continue
        for name in record.live_keys:
            ledger.data_keys.forget(name)
        return disposal
    raise DisposalContended(
        f"patient {patient_id}'s record kept changing during {ATTEMPTS} attempts to dispose of it: "
        "nothing was disposed of; try again"
    )


def _load_register(ledger: Application) -> DisposalRegister:
    try:
        return ledger.repository.get(DISPOSAL_REGISTER_ID)  # type: ignore[no-any-return]
    except AggregateNotFoundError:
        return DisposalRegister()


def disposals(ledger: Application) -> list[Disposal]:
    found = []
    for disposal_id, _patient in _load_register(ledger).disposals:
        found.append(ledger.repository.get(disposal_id))
    return found


def disposal_of_key(ledger: Application) -> dict[str, Disposal]:
    """Each destroyed data key's name → the disposal that destroyed it."""
    return {name: d for d in disposals(ledger) for name in d.key_names}


@dataclass(frozen=True)
class DisposedEvent:
    position: int
    stream: str
    version: int
    type: str
    recorded: str
    actor: str | None
    disposal: str  # "disposed under policy P on date D by user U"


def disposed_events(ledger: Ledger, patient_id: UUID) -> list[DisposedEvent]:
    """The patient's events whose payloads were disposed of, with their metadata (the header
    outlives the content) and how they were disposed of."""
    by_key = disposal_of_key(ledger)
    subject = patient_subject(patient_id)
    with ledger.db.read() as c:
        c.execute(
            "SELECT l.position, e.state FROM ledger_links k "
            "JOIN ledger_leaves l ON l.position = k.position "
            "JOIN stored_events e ON e.originator_id = l.stream "
            "AND e.originator_version = l.version "
            "WHERE k.subject = ? ORDER BY k.seq",
            (subject,),
        )
        rows = [(row[0], bytes(row[1])) for row in c.fetchall()]
    found = []
    for position, state in rows:
        header = parse_header(split_record(state)[0])
        disposal = by_key.get(header.key)
        if disposal is None:
            continue
        found.append(
            DisposedEvent(
                position,
                header.stream,
                header.version,
                header.type,
                header.recorded,
                header.actor,
                disposal.describe(),
            )
        )
    return found
