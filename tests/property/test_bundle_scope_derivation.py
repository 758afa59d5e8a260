"""Properties of BUNDLE_FORMAT v2's scope derivation (docs/BUNDLE_FORMAT.md §2.2-§2.3) and of
the verifier's own copies of the producer's rules:

- holds placed, changed, partly released, released and re-noticed, in any order, some events
  missing, interleaved with another matter's hold: ``verify.bundle_scope.derive_holds`` gives
  what an independent model in this file gives, or refuses exactly when the model does;
- the verifier's ``covers`` agrees with the producer's (legal_hold.production_scope) on every
  scope and header;
- the privilege log's rows read back as the writer wrote them, whatever the claim;
- an entry name is refused exactly when it could land outside the folder it is unpacked into.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from legal_hold.holds import CATEGORIES
from legal_hold.holds import Scope as DomainScope
from legal_hold.production_scope import covers as producer_covers
from legal_hold.review import privilege_log
from verify import bundle_scope as sc
from verify.bundle_container import name_problem
from verify.bundle_privilege import cell, privilege_rows
from verify.records import Header

MATTER, OTHER = str(UUID(int=1000)), str(UUID(int=2000))
IDS = [str(UUID(int=i)) for i in range(1, 6)]
HOLDS = [str(UUID(int=100 + i)) for i in range(3)]
OPS = ("place", "change", "partly", "release", "notice")


def uuid_tag(value: str) -> dict[str, str]:
    return {"_type_": "uuid", "_data_": value}


@dataclass(frozen=True)
class Op:
    hold: str
    kind: str
    patients: frozenset[str]
    custodians: frozenset[str]
    all_patients: bool
    matter: str


ops = st.builds(
    Op,
    hold=st.sampled_from(HOLDS),
    kind=st.sampled_from(OPS),
    patients=st.frozensets(st.sampled_from(IDS), max_size=3),
    custodians=st.frozensets(st.sampled_from(IDS), max_size=2),
    all_patients=st.booleans(),
    matter=st.sampled_from([MATTER, MATTER, OTHER]),
)


def scope_payload(op: Op) -> dict[str, Any]:
    return {
        "end": None,
        "start": {"_type_": "date", "_data_": "2026-01-01"},
        "patients": [uuid_tag(p) for p in sorted(op.patients)],
        "categories": [],
        "custodians": [uuid_tag(c) for c in sorted(op.custodians)],
        "all_patients": op.all_patients,
    }


def event(position: int, version: int, op: Op) -> sc.HoldEvent:
    """The hold event ``op`` stands for, with a payload shaped as the ledger stores it."""
    at = {"_type_": "datetime", "_data_": f"2026-03-02T09:00:{position % 60:02d}.000000Z"}
    if op.kind == "place":
        kind, payload = (
            sc.PLACED,
            {
                "name": f"hold {op.hold[-1]}",
                "scope": scope_payload(op),
                "matter_id": uuid_tag(op.matter),
                "placed_at": at,
            },
        )
    elif op.kind == "change":
        kind, payload = sc.SCOPE_CHANGED, {"scope": scope_payload(op), "at": at, "reason": "r"}
    elif op.kind == "partly":
        kind, payload = (
            sc.PARTLY_RELEASED,
            {
                "patients": [uuid_tag(p) for p in sorted(op.patients)],
                "custodians": [uuid_tag(c) for c in sorted(op.custodians)],
                "at": at,
            },
        )
    elif op.kind == "release":
        kind, payload = sc.RELEASED, {"at": at, "reason": "r"}
    else:
        kind, payload = sc.HOLD_PREFIX + "NoticeIssued", {"at": at, "text": "t", "version": 1}
    return sc.HoldEvent(position, op.hold, version, kind, payload)


# --- the model: sets and a flag, replayed per hold -------------------------------------------


def model(stream: list[tuple[int, int, Op]]) -> tuple[Any, ...] | str | None:
    """What one hold's events (position, version, op) give: a tuple, None when the stream is not
    this matter's hold, "refused" when its events make no hold."""
    stream = sorted(stream, key=lambda e: e[0])
    first = stream[0][2]
    if first.kind != "place" or first.matter != MATTER:
        return None
    patients: set[str] = set()
    custodians: set[str] = set()
    everyone, active, placed = False, True, False
    for expected, (_, version, op) in enumerate(stream, start=1):
        if version != expected:
            return "refused"
        if op.kind == "place":
            if placed:
                return "refused"
            placed = True
            patients, custodians, everyone = set(op.patients), set(op.custodians), op.all_patients
            continue
        if not active:
            return "refused"
        if op.kind == "change":
            patients, custodians, everyone = set(op.patients), set(op.custodians), op.all_patients
        elif op.kind == "partly":
            patients -= op.patients
            custodians -= op.custodians
        elif op.kind == "release":
            active = False
    return (
        first.hold,
        f"hold {first.hold[-1]}",
        sorted(patients),
        sorted(custodians),
        everyone,
        active,
        stream[0][0],
    )


@st.composite
def sequences(draw: st.DrawFn) -> list[Op]:
    """Each hold's events, most streams opening with a Placed event (so that most of them are
    holds to derive), interleaved in any order."""
    streams = []
    for hold in HOLDS:
        mine = draw(st.lists(ops.map(lambda op, h=hold: _with(op, hold=h)), max_size=6))
        if mine and draw(st.integers(0, 4)):
            mine[0] = _with(mine[0], kind="place")
        streams.append(mine)
    turns = draw(st.permutations([i for i, mine in enumerate(streams) for _ in mine]))
    merged = [streams[i].pop(0) for i in turns]
    return merged or [draw(ops)]


def _with(op: Op, **changes: Any) -> Op:
    return Op(**{**op.__dict__, **changes})


@given(sequences(), st.sets(st.integers(0, 17), max_size=2))
def test_the_derived_holds_are_the_models(sequence: list[Op], missing: set[int]) -> None:
    """Any order of any hold events, some left out (a gap in a stream's versions)."""
    versions: dict[str, int] = {}
    made = []
    for position, op in enumerate(sequence):
        versions[op.hold] = versions.get(op.hold, 0) + 1
        if position not in missing:
            made.append((position, versions[op.hold], op))
    by_stream: dict[str, list[tuple[int, int, Op]]] = {}
    for found in made:
        by_stream.setdefault(found[2].hold, []).append(found)
    expected = [model(s) for s in by_stream.values()]

    events = [event(position, version, op) for position, version, op in made]
    try:
        holds = sc.derive_holds(reversed(events), MATTER)  # any order in, placement order out
    except sc.ScopeError:
        assert "refused" in expected
        return
    assert "refused" not in expected
    wanted = sorted((e for e in expected if e is not None), key=lambda e: e[-1])
    got = [
        (
            h.id,
            h.name,
            list(h.scope.patients),
            list(h.scope.custodians),
            h.scope.all_patients,
            h.active,
            h.placed_at,
        )
        for h in holds
    ]
    assert got == wanted
    for hold in holds:
        assert hold.scope.start == "2026-01-01" and hold.scope.end is None


# --- the verifier's covers is the producer's -------------------------------------------------

TYPES = [
    "domain.notes:Note.Drafted",
    "domain.identifiers:Identifier.Added",
    "domain.access:Access.Recorded",
    "domain.access:Disclosure.Recorded",
    "domain.users:User.Registered",
    "domain.messages:Thread.EmailIngested",
    "legal_hold.holds:Hold.Placed",
]
days = st.dates(date(2025, 1, 1), date(2027, 12, 31))


@given(
    patients=st.sets(st.sampled_from(IDS), max_size=3),
    custodians=st.sets(st.sampled_from(IDS), max_size=2),
    everyone=st.booleans(),
    start=st.none() | days,
    end=st.none() | days,
    categories=st.sets(st.sampled_from(CATEGORIES), max_size=3),
    event_patients=st.sets(st.sampled_from(IDS), max_size=2),
    event_users=st.sets(st.sampled_from(IDS), max_size=2),
    recorded=days,
    event_type=st.sampled_from(TYPES),
)
def test_the_verifiers_covers_is_the_producers(
    patients: set[str],
    custodians: set[str],
    everyone: bool,
    start: date | None,
    end: date | None,
    categories: set[str],
    event_patients: set[str],
    event_users: set[str],
    recorded: date,
    event_type: str,
) -> None:
    if start is not None and end is not None and end < start:
        start, end = end, start
    subjects = tuple(
        sorted(
            [f"patient:{p}" for p in event_patients] + [f"user:{u}" for u in event_users],
            key=str.encode,
        )
    )
    domain = DomainScope(
        tuple(map(UUID, sorted(patients))),
        tuple(map(UUID, sorted(custodians))),
        everyone,
        start,
        end,
        tuple(sorted(categories)),
    )
    mine = sc.Scope(
        tuple(sorted(patients)),
        tuple(sorted(custodians)),
        everyone,
        None if start is None else start.isoformat(),
        None if end is None else end.isoformat(),
        tuple(sorted(categories)),
    )
    when = f"{recorded.isoformat()}T10:00:00.000000Z"
    header = Header(event_type, IDS[0], 1, None, None, when, None, subjects, "k", b"", b"")
    assert sc.covers(mine, subjects, when, event_type) == producer_covers(domain, header)


# --- the privilege log reads back as written --------------------------------------------------


@given(st.lists(st.text(min_size=1, max_size=30), max_size=5))
def test_privilege_log_rows_read_back_as_written(claims: list[str]) -> None:
    table = [
        ["1", "2026-03-02", "t", "", "", "d", claim, str(position), "ab" * 32, ""]
        for position, claim in enumerate(claims)
    ]
    rows = privilege_rows(privilege_log.csv_bytes(table))
    assert [(r.position, r.claim) for r in rows] == [(p, cell(c)) for p, c in enumerate(claims)]


# --- entry names --------------------------------------------------------------------------------

segment = st.text(st.sampled_from("abz09._-~ é"), min_size=1, max_size=6)


@given(st.lists(segment, min_size=1, max_size=4))
def test_an_entry_name_is_refused_exactly_when_a_segment_could_climb_out(parts: list[str]) -> None:
    name = "/".join(parts)
    unsafe = any(p in (".", "..") for p in parts)
    assert (name_problem(name, 0) is not None) == unsafe
    assert name_problem("/" + name, 0) is not None
    assert name_problem(name + "/", 0) is not None
    assert name_problem(name, 8) is not None  # deflated
