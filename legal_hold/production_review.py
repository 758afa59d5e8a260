"""What a production hands to the review-platform writers (``legal_hold.review``): chart and
thread timelines, natives and the privilege log, gathered from the bundle's own records.

A withheld event appears with its metadata and an empty text, so no payload reaches a review
file unless it is produced. The privilege log lists every event withheld with a claim: the
producer's privilege claims and the login credentials withheld under ``CREDENTIAL_CLAIM``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msgpack

from legal_hold import review
from legal_hold.production_scope import CREDENTIAL_CLAIM
from legal_hold.review.items import (
    PrivilegeEntry,
    ReviewFile,
    ReviewInput,
    Timeline,
    TimelineEntry,
)
from verify.bundle_format import PRIVILEGED, PRODUCED, EventRecord
from verify.records import Header

MESSAGES = "domain.messages:"
WITHHELD = {PRIVILEGED: "privileged", "out-of-scope": "out of scope", "disposed": "disposed"}
CREDENTIAL = "security credential"  # a timeline's notice for a login credential withheld
Progress = Callable[[int, int], None]
TEXT_LIMIT = 2000  # characters of one entry's text; natives carry the full content


def bates_prefix(matter_number: str) -> str:
    # The trailing hyphen sets the label apart from its zero-padded number: CLCV20261-0000001.
    return "CL" + re.sub(r"[^A-Za-z0-9]", "", matter_number).upper()[:20] + "-"


def timelines(
    records: Sequence[EventRecord], headers: dict[int, Header], subjects: Sequence[str]
) -> tuple[Timeline, ...]:
    """One timeline per message thread, and one per subject in scope for everything else (an
    event goes to the first subject in scope it concerns, so it is shown once)."""
    in_scope = set(subjects)
    by_key: dict[tuple[str, str], list[TimelineEntry]] = {}
    for record in records:
        header = headers[record.position]
        if header.type.startswith(MESSAGES):
            key = ("thread", header.stream)
        else:
            owner = next((s for s in header.subjects if s in in_scope), None)
            if owner is None:
                continue
            key = ("chart", owner)
        by_key.setdefault(key, []).append(_entry(record, header))
    made = []
    for (kind, name), entries in sorted(by_key.items()):
        if kind == "thread":
            title, custodian = f"Message thread {name}", "practice"
        elif name.startswith("patient:"):
            title, custodian = f"Chart of patient {name.removeprefix('patient:')}", "practice"
        else:
            title, custodian = f"Activity of custodian {name.removeprefix('user:')}", name
        made.append(Timeline(title=title, custodian=custodian, kind=kind, entries=tuple(entries)))
    return tuple(made)


def privilege_log(
    records: Sequence[EventRecord], headers: dict[int, Header]
) -> tuple[PrivilegeEntry, ...]:
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
                author=header.actor,
                recipients=tuple(s for s in header.subjects if s != header.actor),
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


def _entry(record: EventRecord, header: Header) -> TimelineEntry:
    produced = record.status == PRODUCED
    withheld = None if produced else WITHHELD.get(record.status, record.status)
    if record.status == PRIVILEGED and record.claim == CREDENTIAL_CLAIM:
        withheld = CREDENTIAL
    return TimelineEntry(
        position=record.position,
        recorded=header.recorded,
        original=header.original,
        actor=header.actor,
        kind=_kind(header.type),
        text=_readable(_unpack(record.payload)) if produced and record.payload else "",
        withheld=withheld,
    )


def _unpack(payload: bytes) -> Any:
    # The payload opened under its commitment from the practice's own store: no canonical
    # re-check is needed to render it, and the C unpacker alone is several times faster.
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def _kind(event_type: str) -> str:
    return event_type.partition(":")[2] or event_type


def _readable(payload: Any) -> str:
    parts = []
    for name, value in payload.items() if type(payload) is dict else ():
        if name == "subjects":
            continue
        parts.append(f"{name}: {_value(value)}")
    text = "; ".join(parts)
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def _value(value: Any) -> str:
    if type(value) is bytes:
        return f"<{len(value)} bytes>"
    if type(value) is dict and set(value) == {"_data_", "_type_"}:
        return _value(value["_data_"])
    if type(value) is dict:
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    if type(value) is list:
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return str(value)
