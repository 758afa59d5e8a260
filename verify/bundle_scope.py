"""The scope of a production, derived from the matter's hold events alone
(docs/BUNDLE_FORMAT.md §2), and the status each event must then have.

Pure rules over decoded payloads and headers: nothing here reads a file. The verifier carries its
own lists (event types holding secrets, record categories) because verify/ imports nothing of the
project; tests hold them equal to the domain's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

HOLD_PREFIX = "legal_hold.holds:Hold."
PLACED = HOLD_PREFIX + "Placed"
SCOPE_CHANGED = HOLD_PREFIX + "ScopeChanged"
PARTLY_RELEASED = HOLD_PREFIX + "PartlyReleased"
RELEASED = HOLD_PREFIX + "Released"
# Events of a hold's stream that do not change its scope.
NOTICE_TYPES = frozenset(
    HOLD_PREFIX + name for name in ("NoticeIssued", "NoticeSent", "NoticeAcknowledged")
)
HOLD_TYPES = frozenset({PLACED, SCOPE_CHANGED, PARTLY_RELEASED, RELEASED}) | NOTICE_TYPES
DISPOSED = "legal_hold.retention:Disposal.Disposed"

# Every event type whose payload holds a login secret or a hash of one (§2.1): never produced.
SECRET_EVENT_TYPES = frozenset(
    {
        "domain.credentials:Account.Opened",
        "domain.credentials:Account.PasswordChanged",
        "domain.credentials:Account.TotpEnrolled",
        "domain.credentials:Account.RecoveryCodesIssued",
        "domain.credentials:Account.RecoveryCodeUsed",
        "domain.credentials:Account.RecoveryApproved",
        "domain.credentials:Account.RecoveryApprovalUsed",
        "domain.credentials:Account.EnrollmentCodeIssued",
        "domain.credentials:Account.Enrolled",
        "domain.sessions:Session.Started",
    }
)
CREDENTIAL_CLAIM = "security credential: not produced"
# The record category of an event type's module (§2 rule 4); domain.access is split by type.
CATEGORIES = {
    "domain.patients": "demographics",
    "domain.identifiers": "demographics",
    "domain.notes": "notes",
    "domain.problems": "problems",
    "domain.medications": "medications",
    "domain.allergies": "allergies",
    "domain.vitals": "vitals",
    "domain.labs": "labs",
    "domain.amendments": "amendments",
    "domain.documents": "documents",
    "domain.messages": "messages",
    "domain.appointments": "appointments",
}
PATIENT, USER = "patient:", "user:"


class ScopeError(Exception):
    """The hold events do not give a scope: ``item`` names what failed."""

    def __init__(self, item: str, text: str) -> None:
        super().__init__(f"{item}: {text}")
        self.item, self.text = item, text


@dataclass(frozen=True)
class Scope:
    """A hold's scope as the manifest states it (§3.1), every id as lowercase UUID text."""

    patients: tuple[str, ...] = ()
    custodians: tuple[str, ...] = ()
    all_patients: bool = False
    start: str | None = None
    end: str | None = None
    categories: tuple[str, ...] = ()

    @cached_property
    def patient_set(self) -> frozenset[str]:
        return frozenset(self.patients)

    @cached_property
    def custodian_set(self) -> frozenset[str]:
        return frozenset(self.custodians)

    def as_manifest(self) -> dict[str, Any]:
        return {
            "end": self.end,
            "start": self.start,
            "patients": list(self.patients),
            "categories": list(self.categories),
            "custodians": list(self.custodians),
            "all_patients": self.all_patients,
        }


@dataclass
class Hold:
    id: str
    name: str
    scope: Scope
    active: bool = True
    placed_at: int = 0  # position of its Placed event
    history: list[tuple[int, str, str | None]] = field(default_factory=list)  # (position, type, at)

    def as_manifest(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scope": self.scope.as_manifest(),
            "active": self.active,
        }


@dataclass(frozen=True)
class HoldEvent:
    """One produced event of a hold's stream: where it is and what its payload says."""

    position: int
    stream: str
    version: int
    type: str
    payload: Mapping[str, Any]


def untag(value: Any) -> Any:
    """A payload value with LEDGER_FORMAT.md §4.2's tags replaced by their text or list."""
    if type(value) is dict and set(value) == {"_type_", "_data_"}:
        return untag(value["_data_"])
    if type(value) is list:
        return [untag(v) for v in value]
    return value


def _ids(value: Any, what: str, item: str) -> tuple[str, ...]:
    found = untag(value)
    if type(found) is not list or not all(type(v) is str for v in found):
        raise ScopeError(item, f"{what} is not a list of identifiers")
    return tuple(sorted(set(found)))


def _day(value: Any, what: str, item: str) -> str | None:
    found = untag(value)
    if found is not None and (type(found) is not str or len(found) != 10):
        raise ScopeError(item, f"{what} is not a date")
    return found  # type: ignore[no-any-return]


def scope_of(payload: Any, item: str) -> Scope:
    if type(payload) is not dict:
        raise ScopeError(item, "the scope is not a map")
    try:
        scope = Scope(
            patients=_ids(payload["patients"], "patients", item),
            custodians=_ids(payload["custodians"], "custodians", item),
            all_patients=payload["all_patients"],
            start=_day(payload["start"], "start", item),
            end=_day(payload["end"], "end", item),
            categories=_ids(payload["categories"], "categories", item),
        )
    except KeyError as e:
        raise ScopeError(item, f"the scope has no {e.args[0]!r}") from None
    if type(scope.all_patients) is not bool:
        raise ScopeError(item, "all_patients is not true or false")
    return scope


def derive_holds(events: Iterable[HoldEvent], matter_id: str) -> list[Hold]:
    """The matter's holds, each with the scope its events leave it with, in the order they were
    placed. A hold is a stream whose version 1 is ``Hold.Placed`` naming the matter; its events
    must be versions 1, 2, … in ascending position, and nothing follows ``Released``."""
    streams: dict[str, list[HoldEvent]] = {}
    for e in events:
        streams.setdefault(e.stream, []).append(e)
    holds = []
    for stream, found in streams.items():
        found.sort(key=lambda e: e.position)
        first = found[0]
        if first.type != PLACED or untag(first.payload.get("matter_id")) != matter_id:
            # Another matter's hold (a custodian's chain brings its events along), or one whose
            # Placed is on no chain in the bundle: nothing here ties it to this matter (§12).
            continue
        holds.append(_replay(stream, found))
    holds.sort(key=lambda h: h.placed_at)
    return holds


def _replay(stream: str, found: Sequence[HoldEvent]) -> Hold:
    hold: Hold | None = None
    for expected, e in enumerate(found, start=1):
        item = f"event {e.position}"
        if e.version != expected:
            raise ScopeError(item, f"hold {stream}: version {e.version}, expected {expected}")
        if e.type not in HOLD_TYPES:
            raise ScopeError(item, f"hold {stream}: unknown hold event {e.type}")
        at = untag(e.payload.get("at", e.payload.get("placed_at")))
        if e.type == PLACED:
            if hold is not None:
                raise ScopeError(item, f"hold {stream}: placed twice")
            name = e.payload.get("name")
            if type(name) is not str:
                raise ScopeError(item, "the hold's name is not text")
            hold = Hold(stream, name, scope_of(e.payload.get("scope"), item), placed_at=e.position)
        elif hold is None:
            raise ScopeError(item, f"hold {stream}: {e.type} before Placed")
        elif not hold.active:
            raise ScopeError(item, f"hold {stream}: {e.type} after Released")
        elif e.type == SCOPE_CHANGED:
            hold.scope = scope_of(e.payload.get("scope"), item)
        elif e.type == PARTLY_RELEASED:
            patients = set(_ids(e.payload.get("patients"), "patients", item))
            custodians = set(_ids(e.payload.get("custodians"), "custodians", item))
            s = hold.scope
            hold.scope = replace(
                s,
                patients=tuple(p for p in s.patients if p not in patients),
                custodians=tuple(c for c in s.custodians if c not in custodians),
            )
        elif e.type == RELEASED:
            hold.active = False
        assert hold is not None
        hold.history.append((e.position, e.type, at if type(at) is str else None))
    assert hold is not None
    return hold


def named_subjects(holds: Iterable[Hold]) -> set[str]:
    """The patients and custodians the holds name, as subjects."""
    found = set()
    for hold in holds:
        found.update(PATIENT + p for p in hold.scope.patients)
        found.update(USER + c for c in hold.scope.custodians)
    return found


def category_of(event_type: str) -> str | None:
    module, _, qualname = event_type.partition(":")
    if module == "domain.access":
        return "access" if qualname.startswith("Access.") else "disclosures"
    return CATEGORIES.get(module)


def covers(scope: Scope, subjects: Sequence[str], recorded: str, event_type: str) -> bool:
    """Whether ``scope`` covers an event whole (§2.4 rules 1-4)."""
    return covers_subjects(scope, subjects) and covers_rest(scope, recorded, event_type)


def covers_subjects(scope: Scope, subjects: Sequence[str]) -> bool:
    """§2.4 rules 1 and 2: the event concerns the scope, and no patient outside it."""
    patients = [s[len(PATIENT) :] for s in subjects if s.startswith(PATIENT)]
    users = [s[len(USER) :] for s in subjects if s.startswith(USER)]

    def has(patient: str) -> bool:
        return scope.all_patients or patient in scope.patient_set

    if not (any(map(has, patients)) or any(u in scope.custodian_set for u in users)):
        return False
    return all(map(has, patients))


def covers_rest(scope: Scope, recorded: str, event_type: str) -> bool:
    """§2.4 rules 3 and 4: the event's date and category."""
    day = recorded[:10]
    if scope.start is not None and day < scope.start:
        return False
    if scope.end is not None and day > scope.end:
        return False
    return not scope.categories or category_of(event_type) in scope.categories


def key_owner(key_name: str) -> str:
    return key_name.rpartition("#")[0]


def expected_owner(subjects: Sequence[str]) -> str:
    """The owner of the data key an event is sealed under: its first subject, or the practice."""
    return subjects[0] if subjects else "practice"
