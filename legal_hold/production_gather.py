"""Reading what a production needs from the ledger at one checkpoint: the events of the subjects
in scope with their leaves, their payloads where they are produced, and the proofs.

Nothing here writes. Payloads are opened with the practice's data keys; an event whose key was
destroyed is produced as disposed.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from domain.base import patient_subject
from events import tiles
from events.db import Cursor
from events.ledger import Ledger
from events.log import subject_heads
from events.sealing import DataKeyDestroyed, SealError, unseal
from legal_hold.holds import Scope
from legal_hold.production_errors import InvalidProduction, ProductionError
from legal_hold.production_scope import HOLD_EVENTS, status_of
from legal_hold.retention import disposals
from projections.runner import KeyRing
from verify.bundle_format import PRODUCED, EventRecord
from verify.checkpoint import UnverifiedCheckpoint
from verify.compact import TreeLevels
from verify.hashing import commitment
from verify.merkle import leaf_hash
from verify.records import Header, head_bytes, parse_header, split_record

Progress = Callable[[int, int], None]
CHUNK = 500  # positions per IN (...) query


@dataclass
class Gathered:
    """Everything of the ledger a bundle holds, as of ``checkpoint``."""

    checkpoint: UnverifiedCheckpoint
    note: bytes
    key_rows: list[list[Any]]
    records: list[EventRecord] = field(default_factory=list)
    headers: dict[int, Header] = field(default_factory=dict)
    inclusion: list[bytes] = field(default_factory=list)
    heads: list[dict[str, Any]] = field(default_factory=list)
    heads_size: int = 0
    absent: list[str] = field(default_factory=list)  # in scope, but with no event at all
    absences: list[dict[str, Any]] = field(default_factory=list)  # their proofs
    since_note: bytes | None = None
    consistency: list[bytes] | None = None


def patient_subjects(cursor: Cursor, size: int) -> list[str]:
    """Every patient the log's first ``size`` leaves concern (for practice-wide holds)."""
    cursor.execute(
        "SELECT DISTINCT subject FROM ledger_links WHERE subject LIKE ? AND position < ?",
        ("patient:%", size),
    )
    return [row[0] for row in cursor.fetchall()]


def subjects_present(cursor: Cursor, subjects: Sequence[str], size: int) -> list[str]:
    """Those of ``subjects`` with at least one event below ``size``, in the order given."""
    found: set[str] = set()
    for start in range(0, len(subjects), CHUNK):
        chunk = list(subjects[start : start + CHUNK])
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT DISTINCT subject FROM ledger_links WHERE subject IN ({marks}) "
            "AND position < ?",
            (*chunk, size),
        )
        found.update(row[0] for row in cursor.fetchall())
    return [s for s in subjects if s in found]


def positions_of(cursor: Cursor, subjects: Sequence[str], size: int) -> list[int]:
    """The positions below ``size`` of every event of ``subjects``, ascending, each once."""
    found: set[int] = set()
    for start in range(0, len(subjects), CHUNK):
        chunk = list(subjects[start : start + CHUNK])
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT position FROM ledger_links WHERE subject IN ({marks}) AND position < ?",
            (*chunk, size),
        )
        found.update(row[0] for row in cursor.fetchall())
    return sorted(found)


def streams_positions(
    ledger: Ledger, cursor: Cursor, streams: Sequence[UUID], size: int
) -> list[int]:
    """The positions below ``size`` of every event of ``streams``, ascending."""
    found: list[int] = []
    ids = [s.hex if ledger.db.dialect == "sqlite" else s for s in streams]
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        cursor.execute(
            f"SELECT position FROM stored_events WHERE originator_id IN ({marks}) AND position < ?",
            (*chunk, size),
        )
        found.extend(row[0] for row in cursor.fetchall())
    return sorted(found)


def evidence_streams(
    ledger: Ledger, hold_ids: Sequence[UUID], subjects: Sequence[str]
) -> list[UUID]:
    """The streams whose events a bundle produces as evidence whatever the scope
    (docs/BUNDLE_FORMAT.md §2.2): the matter's holds, and the disposals of its patients."""
    patients = {s for s in subjects if s.startswith("patient:")}
    disposed = [d.id for d in disposals(ledger) if patient_subject(d.patient_id) in patients]
    return [*hold_ids, *disposed]


def gather(
    ledger: Ledger,
    checkpoint: UnverifiedCheckpoint,
    subjects: Sequence[str],
    scopes: Sequence[Scope],
    claims: Mapping[int, str],
    since: int | None = None,
    progress: Progress | None = None,
    evidence: Sequence[UUID] = (),
) -> Gathered:
    size = checkpoint.size
    with ledger.db.read() as c:
        note = _note(c, size)
        found = Gathered(checkpoint, note, _key_rows(c))
        shown = set(streams_positions(ledger, c, evidence, size))
        positions = sorted(set(positions_of(c, subjects, size)) | shown)
        if not positions:
            raise ProductionError("no event of the subjects in scope is in the log yet")
        # From the stored tiles: the hashes the proofs need, not every leaf of the log. A
        # damaged tile gives a proof the bundle's verifier refuses.
        reader = tiles.TileReader(c)
        found.inclusion = tiles.batch_proof(reader, size, positions)
        _add_heads(found, c, subjects, size)
        if since is not None:
            found.since_note = _note(c, since)
            found.consistency = tiles.consistency_proof(reader, since, size)
    keys = KeyRing(ledger.data_keys)
    if len(positions) > 1000:
        keys.preload()
    for done in range(0, len(positions), CHUNK):
        chunk = positions[done : done + CHUNK]
        with ledger.db.read() as c:
            rows = _rows(c, chunk)
        for position, leaf, state in rows:
            record, header = _record(
                keys, position, bytes(leaf), bytes(state), scopes, claims, position in shown
            )
            found.records.append(record)
            found.headers[position] = header
        if progress is not None:
            progress(min(done + CHUNK, len(positions)), len(positions))
    return found


def _note(cursor: Cursor, size: int) -> bytes:
    cursor.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))
    row = cursor.fetchone()
    if row is None:
        raise InvalidProduction(f"the log has no checkpoint at size {size}")
    return bytes(row[0])


def _key_rows(cursor: Cursor) -> list[list[Any]]:
    cursor.execute("SELECT statement, signature_self, signature_prev FROM ledger_keys ORDER BY seq")
    return [
        [bytes(s), bytes(own), None if prev is None else bytes(prev)]
        for s, own, prev in cursor.fetchall()
    ]


def _add_heads(found: Gathered, cursor: Cursor, subjects: Sequence[str], size: int) -> None:
    """Each subject's head with its proof; for a subject with no head, the two heads either side
    of where it would sort, which prove it has none (docs/BUNDLE_FORMAT.md §7.1)."""
    heads = subject_heads(cursor, size)
    keys = [h[0].encode() for h in heads]
    tree = TreeLevels([leaf_hash(head_bytes(*h)) for h in heads])
    found.heads_size = len(heads)

    def head(i: int) -> dict[str, Any]:
        subject, seq, position = heads[i]
        proof = tree.inclusion_proof(i)
        return {"seq": seq, "index": i, "proof": proof, "subject": subject, "position": position}

    for subject in subjects:
        i = bisect.bisect_left(keys, subject.encode())
        if i < len(keys) and keys[i] == subject.encode():
            found.heads.append(head(i))
            continue
        found.absent.append(subject)
        found.absences.append(
            {
                "lower": head(i - 1) if i > 0 else None,
                "upper": head(i) if i < len(keys) else None,
                "subject": subject,
            }
        )


def _rows(cursor: Cursor, positions: Sequence[int]) -> list[tuple[Any, ...]]:
    marks = ", ".join("?" * len(positions))
    cursor.execute(
        "SELECT l.position, l.leaf, e.state FROM ledger_leaves l JOIN stored_events e "
        "ON e.originator_id = l.stream AND e.originator_version = l.version "
        f"WHERE l.position IN ({marks}) ORDER BY l.position",
        list(positions),
    )
    return cursor.fetchall()


def _record(
    keys: KeyRing,
    position: int,
    leaf: bytes,
    state: bytes,
    scopes: Sequence[Scope],
    claims: Mapping[int, str],
    evidence: bool,
) -> tuple[EventRecord, Header]:
    header_bytes, sealed = split_record(state)
    header = parse_header(header_bytes)
    evidence = evidence or header.type.startswith(HOLD_EVENTS)
    try:
        data_key: bytes | None = keys.get(header.key)
    except DataKeyDestroyed:
        data_key = None
    if evidence and data_key is None:
        raise ProductionError(
            f"the hold or disposal event at position {position} cannot be opened: its data key "
            "is gone, so the bundle could not prove its scope"
        )
    status, claim = status_of(
        position, header, scopes, claims, disposed=data_key is None, evidence=evidence
    )
    if status != PRODUCED:
        return EventRecord(position, leaf, header_bytes, status, claim=claim), header
    assert data_key is not None
    try:
        salt, payload = unseal(data_key, header.stream, header.version, sealed)
    except SealError:
        salt, payload = b"", b""
    if commitment(salt, payload) != header.commitment:
        # The store itself is damaged: producing it would hand over what it cannot prove.
        raise ProductionError(
            f"the event at position {position} does not open to its commitment: "
            "run chartledger verify"
        )
    return EventRecord(position, leaf, header_bytes, status, salt, payload), header
