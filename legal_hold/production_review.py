"""What a production hands to the review-platform writers (``legal_hold.review``): chart and
thread timelines, natives and the privilege log, gathered from the bundle's own records.

A withheld event appears with its metadata and an empty text, so no payload reaches a review
file unless it is produced. The privilege log lists every event withheld with a claim: the
producer's privilege claims and the login credentials withheld under ``CREDENTIAL_CLAIM``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import msgpack

from legal_hold import review
from legal_hold.production_people import People, people
from legal_hold.production_readable import (
    SECTIONS,
    TABLES,
    Reading,
    message,
    reading,
    section_of,
    words,
)
from legal_hold.production_scope import CREDENTIAL_CLAIM
from legal_hold.review.items import (
    LeftOut,
    PrivilegeEntry,
    ReviewFile,
    ReviewInput,
    Timeline,
    TimelineEntry,
)
from verify.bundle_format import OUT_OF_SCOPE, PRIVILEGED, PRODUCED, EventRecord
from verify.records import Header

MESSAGES = "domain.messages:"
WITHHELD = {PRIVILEGED: "privileged", "out-of-scope": "out of scope", "disposed": "disposed"}
CREDENTIAL = "security credential"  # a timeline's notice for a login credential withheld
THREAD_STARTED = "domain.messages:Thread.Started"
SCOPE_REASON = "outside the scope of this production"
Progress = Callable[[int, int], None]


def bates_prefix(matter_number: str) -> str:
    # The trailing hyphen sets the label apart from its zero-padded number: CLCV20261-0000001.
    return "CL" + re.sub(r"[^A-Za-z0-9]", "", matter_number).upper()[:20] + "-"


def documents(
    records: Sequence[EventRecord],
    headers: dict[int, Header],
    subjects: Sequence[str],
    users: dict[str, str],
    practice: str = "practice",
) -> tuple[tuple[Timeline, ...], tuple[LeftOut, ...], People]:
    """One timeline per message thread, and one per subject in scope for everything else (an
    event goes to the first subject in scope it concerns, so it is shown once); and the log of
    what is out of scope. An out-of-scope event is not rendered: it is listed in the scope log,
    and a record left with nothing in scope is no document at all. Also the production's
    directory of names, for the privilege log and the natives."""
    in_scope = set(subjects)
    payloads = {
        r.position: _unpack(r.payload) for r in records if r.status == PRODUCED and r.payload
    }
    names = people(records, headers, payloads, users)
    by_key: dict[tuple[str, str], list[EventRecord]] = {}
    for record in records:
        header = headers[record.position]
        if header.type.startswith(MESSAGES):
            key = ("thread", header.stream)
        else:
            owner = next((s for s in header.subjects if s in in_scope), None)
            if owner is None:
                continue
            key = ("chart", owner)
        by_key.setdefault(key, []).append(record)
    made, left_out = [], []
    for (kind, name), found in sorted(by_key.items()):
        shown = [r for r in found if r.status != OUT_OF_SCOPE]
        title = _title(kind, name, found, headers, payloads, names)
        outside = tuple(r.position for r in found if r.status == OUT_OF_SCOPE)
        if outside:
            left_out.append(LeftOut(title, outside, SCOPE_REASON))
        if not shown:
            continue
        if kind == "thread":
            made.append(_thread(title, name, shown, headers, payloads, names, practice))
        elif name.startswith("patient:"):
            made.append(_chart(title, name, shown, headers, payloads, names, practice))
        else:
            entries = [_entry(r, headers[r.position], payloads, names) for r in shown]
            made.append(Timeline(title, names.name(name), "chart", tuple(entries), reference=name))
    return tuple(made), tuple(left_out), names


def _title(
    kind: str,
    name: str,
    found: list[EventRecord],
    headers: dict[int, Header],
    payloads: dict[int, Any],
    names: People,
) -> str:
    if kind == "thread":
        started = next(
            (payloads[r.position] for r in found if headers[r.position].type == THREAD_STARTED
             and r.position in payloads),
            None,
        )  # fmt: skip
        topic = started.get("topic") if type(started) is dict else None
        return f"Message thread — {topic}" if topic else f"Message thread {name[:8]}"
    if name.startswith("patient:"):
        patient = names.patients.get(name)
        if patient is None or not patient.name:
            return f"Chart of patient {name.removeprefix('patient:')[:8]} (name not produced)"
        mrn = f" (MRN {patient.mrn})" if patient.mrn else ""
        return f"Chart — {patient.name}{mrn}"
    return f"Activity of custodian {names.name(name)}"


def _chart(
    title: str,
    subject: str,
    shown: list[EventRecord],
    headers: dict[int, Header],
    payloads: dict[int, Any],
    names: People,
    practice: str,
) -> Timeline:
    order = {section: i for i, section in enumerate(SECTIONS)}
    entries = [_entry(r, headers[r.position], payloads, names, sections=True) for r in shown]
    entries.sort(key=lambda e: (order.get(e.section, len(order)), e.position))
    patient = names.patients.get(subject)
    header: list[tuple[str, str]] = []
    if patient is not None:
        header = [
            (label, value)
            for label, value in (
                ("Patient", patient.name),
                ("MRN", patient.mrn),
                ("Date of birth", patient.birth_date),
                ("Sex", patient.sex),
                ("Other identifiers", "; ".join(patient.identifiers)),
            )
            if value
        ]
    return Timeline(
        title, practice, "chart", tuple(entries), tuple(header), TABLES, reference=subject
    )


def _thread(
    title: str,
    stream: str,
    shown: list[EventRecord],
    headers: dict[int, Header],
    payloads: dict[int, Any],
    names: People,
    practice: str,
) -> Timeline:
    participants = sorted({s for r in shown for s in headers[r.position].subjects})
    entries = []
    for record in shown:
        header = headers[record.position]
        base = _entry(record, header, payloads, names)
        if record.status == PRODUCED and record.position in payloads:
            found = message(header.type, payloads[record.position], names, participants)
            base = replace(
                base,
                kind=found.kind,
                text=found.text,
                original=found.original or header.original,
                original_label=found.original_label,
            )
        entries.append(base)
    header = (("Participants", "; ".join(names.name(s) for s in participants)),)
    return Timeline(title, practice, "thread", tuple(entries), header, reference=stream)


def privilege_log(
    records: Sequence[EventRecord], headers: dict[int, Header], names: People | None = None
) -> tuple[PrivilegeEntry, ...]:
    names = names or People()
    entries = []
    for record in records:
        if record.status != PRIVILEGED:
            continue
        header = headers[record.position]
        entries.append(
            PrivilegeEntry(
                position=record.position,
                date=header.recorded,
                type=_kind(header.type),
                author=names.name(header.actor) or None,
                recipients=tuple(names.name(s) for s in header.subjects if s != header.actor),
                subject=f"{_kind(header.type)} in record {header.stream}",
                privilege=record.claim or "",
                commitment=header.commitment.hex(),
            )
        )
    return tuple(entries)


def write_review_files(
    root: Path, review_input: ReviewInput, progress: Progress | None = None
) -> list[ReviewFile]:
    """The review writers' files under ``root`` (legal_hold.review, docs/REVIEW_FILES.md)."""
    return list(review.write_review_set(root, review_input, progress=progress))


def _entry(
    record: EventRecord,
    header: Header,
    payloads: dict[int, Any],
    names: People,
    sections: bool = False,
) -> TimelineEntry:
    produced = record.status == PRODUCED
    withheld = None if produced else WITHHELD.get(record.status, record.status)
    if record.status == PRIVILEGED and record.claim == CREDENTIAL_CLAIM:
        withheld = CREDENTIAL
    found = (
        reading(header.type, payloads[record.position], names)
        if produced and record.position in payloads
        else Reading(words(header.type))
    )
    section = section_of(header.type) if sections else ""
    return TimelineEntry(
        position=record.position,
        recorded=header.recorded,
        original=found.original or header.original,
        actor=names.name(header.actor) or None,
        kind=found.kind,
        text=found.text,
        withheld=withheld,
        section=section,
        row=found.row if section in dict(TABLES) else (),
        original_label=found.original_label,
    )


def _unpack(payload: bytes) -> Any:
    # The payload opened under its commitment from the practice's own store: no canonical
    # re-check is needed to render it, and the C unpacker alone is several times faster.
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def _kind(event_type: str) -> str:
    return event_type.partition(":")[2] or event_type
