"""Natives of a production: uploaded documents and ingested emails, byte for byte as stored.

A native is the very bytes of one field of a produced event's payload (``content`` of a stored
document, ``raw`` of an ingested email), so the event's commitment proves the file too
(docs/BUNDLE_FORMAT.md §7). Privileged, out-of-scope and disposed events give no native.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from legal_hold.review.items import Native
from verify.bundle_format import NATIVES_DIR, PRODUCED, EventRecord
from verify.canonical import decode
from verify.records import Header

DOCUMENT = "domain.documents:Document.Stored"
EMAIL = "domain.messages:Thread.EmailIngested"
_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,10}\Z")


@dataclass(frozen=True)
class NativeFile:
    path: str  # relative to the bundle root
    field: str  # the payload field whose bytes it is
    position: int
    item: Native  # what the review writers are told about it


def write_natives(
    root: Path, records: list[EventRecord], headers: dict[int, Header]
) -> list[NativeFile]:
    """Write every produced document and email under ``root``/natives/; return what was written."""
    written = []
    for record in records:
        header = headers[record.position]
        if record.status != PRODUCED or header.type not in (DOCUMENT, EMAIL):
            continue
        assert record.payload is not None
        payload = decode(record.payload)
        if header.type == DOCUMENT:
            native = _document(record.position, header, payload)
        else:
            native = _email(record.position, header, payload)
        data = payload[native.field]
        target = root / native.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(native)
    return written


def _document(position: int, header: Header, payload: dict[str, Any]) -> NativeFile:
    name = str(payload.get("original_filename") or "document")
    suffix = _SUFFIX.search(name)
    path = f"{NATIVES_DIR}{position}{suffix.group(0).lower() if suffix else '.bin'}"
    content: bytes = payload["content"]
    return NativeFile(
        path,
        "content",
        position,
        Native(
            path=path,
            sha256=hashlib.sha256(content).hexdigest(),
            file_name=name,
            media_type=str(payload.get("media_type") or "application/octet-stream"),
            custodian=f"user:{_uuid_text(payload.get('uploader_id'))}",
            date_created=payload.get("source_created"),
            date_modified=payload.get("source_modified"),
            position=position,
        ),
    )


def _email(position: int, header: Header, payload: dict[str, Any]) -> NativeFile:
    path = f"{NATIVES_DIR}{position}.eml"
    raw: bytes = payload["raw"]
    fields: dict[str, str] = {}
    for pair in payload.get("headers") or []:
        if type(pair) is list and len(pair) == 2:
            fields.setdefault(str(pair[0]).lower(), str(pair[1]))
    message_id = fields.get("message-id", "").strip("<> ")
    users = [s for s in header.subjects if s.startswith("user:")]
    return NativeFile(
        path,
        "raw",
        position,
        Native(
            path=path,
            sha256=hashlib.sha256(raw).hexdigest(),
            file_name=f"{message_id or position}.eml",
            media_type="message/rfc822",
            custodian=users[0] if users else "practice",
            date_created=None,
            date_modified=None,
            date_sent=fields.get("date"),
            sender=fields.get("from"),
            to=_addresses(fields.get("to")),
            cc=_addresses(fields.get("cc")),
            subject=fields.get("subject"),
            position=position,
        ),
    )


def _addresses(value: str | None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (value or "").split(",") if a.strip())


def _uuid_text(value: Any) -> str:
    # Payload values of types msgpack lacks are tagged (LEDGER_FORMAT.md §4.2).
    if type(value) is dict and "_data_" in value:
        return str(value["_data_"])
    return str(value)
