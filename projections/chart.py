"""The chart: every patient's record as it stands now, and as it stood at any past time.

The fold is the domain's own: each entry (a note, a lab result, ...) is its aggregate, rebuilt by
applying its events with the aggregate's own ``mutate``, so the view cannot drift from the
domain's rules. A row keeps the entry's state encoded with the ledger's canonical transcoder,
which gives back exactly the types it was given (Decimal, date, UUID, bytes), and is therefore
byte-identical however the row was reached: live, rebuilt, or folded again by ``as_of``; it is
deflated against a fixed dictionary (``projections/state_codec.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic, resolve_topic

from events.db import Cursor, Database, Dialect
from events.encoding import CanonicalTranscoder
from events.ledger import Ledger
from projections import state_codec
from projections.runner import Entry, Projection, entries_at

# The modules whose aggregates make up a patient's chart.
CHART_MODULES = frozenset(
    {
        "domain.patients",
        "domain.notes",
        "domain.problems",
        "domain.medications",
        "domain.allergies",
        "domain.vitals",
        "domain.labs",
        "domain.amendments",
        "domain.documents",
        "domain.encounters",
    }
)
TRANSIENT = ("_pending_events",)  # never part of an aggregate's recorded state
KEEP_AT_MOST = 50_000  # entries' aggregates kept from one batch to the next in a pass
_Row = tuple[str, str, str, str, int, str, str, bytes]  # a chart_entries row
_transcoder = CanonicalTranscoder()


@dataclass(frozen=True)
class ChartEntry:
    """One entry of a chart: its aggregate's state after its last event up to the time asked."""

    entry_id: UUID
    kind: str
    version: int
    first_recorded: str
    last_recorded: str
    state: dict[str, Any]


def encode_state(aggregate: Any, row: tuple[str, str, str]) -> bytes:
    """The aggregate's state as its row keeps it; ``row`` is the row's entry id, patient id and
    first recorded time, which the state repeats and the row never changes once written."""
    state = {k: v for k, v in vars(aggregate).items() if k not in TRANSIENT}
    return state_codec.pack(_transcoder.encode(state), row)


def decode_state(topic: str, data: bytes, row: tuple[str, str, str]) -> Any:
    aggregate = object.__new__(resolve_topic(topic))
    aggregate.__dict__.update(_transcoder.decode(state_codec.unpack(data, row)))
    aggregate.__dict__["_pending_events"] = []
    return aggregate


def public_state(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if not k.startswith("_")}


def patients_of(entry: Entry) -> list[str]:
    return [s.removeprefix("patient:") for s in entry.header.subjects if s.startswith("patient:")]


class _Fold:
    """Entries' aggregates, folded event by event, with when each was first and last changed."""

    def __init__(self, modules: frozenset[str]) -> None:
        self.modules = modules
        # Keyed by the stream id as text, as headers and rows carry it.
        self.aggregates: dict[str, Any] = {}
        self.first: dict[str, str] = {}
        self.last: dict[str, str] = {}
        # The patient whose chart each entry is in: its row's, once written (never changed).
        self.patient: dict[str, str] = {}

    def concerns(self, entry: Entry) -> bool:
        return (
            entry.event is not None
            and entry.header.type.partition(":")[0] in self.modules
            and bool(patients_of(entry))
        )

    def apply(self, entry: Entry) -> str:
        stream = entry.header.stream
        aggregate = self.aggregates.get(stream)
        self.aggregates[stream] = entry.event.mutate(aggregate)  # type: ignore[union-attr]
        self.first.setdefault(stream, entry.header.recorded)
        self.patient.setdefault(stream, patients_of(entry)[0])
        self.last[stream] = entry.header.recorded
        return stream

    def entry(self, stream: str) -> ChartEntry:
        aggregate = self.aggregates[stream]
        return ChartEntry(
            entry_id=UUID(stream),
            kind=type(aggregate).__name__,
            version=aggregate.version,
            first_recorded=self.first[stream],
            last_recorded=self.last[stream],
            state=public_state(aggregate),
        )


class ChartView(Projection):
    name = "chart"
    tables = ("chart_entries",)

    def __init__(self, modules: Iterable[str] = CHART_MODULES) -> None:
        self.modules = frozenset(modules)
        self._kept, self._kept_at = _Fold(self.modules), None

    def create(self, cursor: Cursor, dialect: Dialect) -> None:
        big = "INTEGER" if dialect == "sqlite" else "bigint"
        blob = "BLOB" if dialect == "sqlite" else "bytea"
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS chart_entries (entry_id TEXT PRIMARY KEY, "
            f"patient_id TEXT NOT NULL, kind TEXT NOT NULL, topic TEXT NOT NULL, "
            f"version {big} NOT NULL, first_recorded TEXT NOT NULL, last_recorded TEXT NOT NULL, "
            f"state {blob} NOT NULL)"
        )
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS chart_entries_by_patient ON chart_entries (patient_id)"
        )

    def apply(self, cursor: Cursor, entries: Sequence[Entry]) -> None:
        def load(streams: set[str], fold: _Fold) -> None:
            self._load(cursor, fold, streams)

        self.write(cursor, self._rows(_Fold(self.modules), entries, load))

    def prepare(self, db: Database, entries: Sequence[Entry], since: int) -> list[_Row]:
        # Within one pass the entries' aggregates are kept from batch to batch, so each batch
        # need not read back and decode the rows the one before it wrote. What is kept is as of
        # the position the view reached with it, and only used from exactly there.
        if since != self._kept_at or len(self._kept.aggregates) > KEEP_AT_MOST:
            self._kept = _Fold(self.modules)
        self._kept_at = None  # until this batch is folded in whole

        def load(streams: set[str], fold: _Fold) -> None:
            with db.read() as c:
                self._load(c, fold, streams)

        rows = self._rows(self._kept, entries, load)
        self._kept_at = entries[-1].position + 1 if entries else since
        return rows

    def forget(self) -> None:
        self._kept, self._kept_at = _Fold(self.modules), None

    def write(self, cursor: Cursor, prepared: list[_Row]) -> None:
        if not prepared:
            return
        cursor.executemany(
            "INSERT INTO chart_entries (entry_id, patient_id, kind, topic, version, "
            "first_recorded, last_recorded, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (entry_id) DO UPDATE SET version = excluded.version, "
            "last_recorded = excluded.last_recorded, state = excluded.state",
            prepared,
        )

    def _rows(
        self, fold: _Fold, entries: Sequence[Entry], load: Callable[[set[str], _Fold], None]
    ) -> list[_Row]:
        """Fold the batch into ``fold``; the rows of the entries it changed."""
        relevant = [e for e in entries if fold.concerns(e)]
        if not relevant:
            return []
        missing = {e.header.stream for e in relevant} - fold.aggregates.keys()
        if missing:
            load(missing, fold)
        changed = dict.fromkeys(fold.apply(entry) for entry in relevant)
        rows = []
        for stream in changed:
            aggregate = fold.aggregates[stream]
            patient, first = fold.patient[stream], fold.first[stream]
            rows.append(
                (
                    stream,
                    patient,
                    type(aggregate).__name__,
                    get_topic(type(aggregate)),
                    aggregate.version,
                    first,
                    fold.last[stream],
                    encode_state(aggregate, (stream, patient, first)),
                )
            )
        return rows

    def _load(self, cursor: Cursor, fold: _Fold, streams: set[str]) -> None:
        """The rows the batch changes, back as the aggregates they hold."""
        pending = sorted(streams)
        for start in range(0, len(pending), 500):
            chunk = pending[start : start + 500]
            cursor.execute(
                "SELECT entry_id, patient_id, topic, first_recorded, last_recorded, state "
                f"FROM chart_entries WHERE entry_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for entry_id, patient, topic, first, last, state in cursor.fetchall():
                stream = entry_id
                row = (entry_id, patient, first)
                fold.aggregates[stream] = decode_state(topic, bytes(state), row)
                fold.first[stream], fold.last[stream] = first, last
                fold.patient[stream] = patient


CHART = (
    "SELECT entry_id, patient_id, kind, topic, version, first_recorded, last_recorded, state "
    "FROM chart_entries WHERE patient_id = ? ORDER BY first_recorded, entry_id"
)


def chart(db: Database, patient_id: UUID | str) -> list[ChartEntry]:
    """The patient's chart as the view holds it now, oldest entry first.

    This reads the view only; recording the read is the caller's duty (``projections.reads``).
    """
    return chart_entries(db.query(CHART, (str(patient_id),)))


def chart_entries(rows: Iterable[Sequence[Any]]) -> list[ChartEntry]:
    """The chart entries of rows read by ``CHART``."""
    return [
        ChartEntry(
            entry_id=UUID(entry_id),
            kind=kind,
            version=version,
            first_recorded=first,
            last_recorded=last,
            state=public_state(decode_state(topic, bytes(state), (entry_id, patient, first))),
        )
        for entry_id, patient, kind, topic, version, first, last, state in rows
    ]


def as_of(
    ledger: Ledger, patient_id: UUID | str, moment: str, modules: Iterable[str] = CHART_MODULES
) -> list[ChartEntry]:
    """The chart as it stood at ``moment`` (a ledger timestamp): the patient's chain, folded
    up to the last event recorded at or before it. Proven complete by the chain itself."""
    subject = f"patient:{patient_id}"
    with ledger.db.read() as c:
        c.execute("SELECT position FROM ledger_links WHERE subject = ? ORDER BY seq", (subject,))
        positions = [row[0] for row in c.fetchall()]
    fold = _Fold(frozenset(modules))
    for entry in entries_at(ledger, positions):
        # Not a break: concurrent writers may commit out of the order of their clocks.
        if entry.header.recorded <= moment and fold.concerns(entry):
            fold.apply(entry)
    found = [fold.entry(stream) for stream in fold.aggregates]
    return sorted(found, key=lambda e: (e.first_recorded, str(e.entry_id)))
