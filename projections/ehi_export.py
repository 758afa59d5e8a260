"""The EHI export (ONC 170.315(b)(10)): one patient's or every patient's electronic health
information as FHIR R4 Bulk Data NDJSON with a manifest, next to the ledger's own records
(docs/EHI_EXPORT.md).

An export is a read: it is recorded first, as one ``Access`` event (action ``export``) per
exported patient, and only then is anything written. The files are written into a staging
folder beside the destination and moved into place whole, so a failed export leaves no folder.
"""

from __future__ import annotations

import gc
import json
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from uuid import UUID, uuid4

from domain.credentials import SECRET_EVENT_TYPES
from domain.users import User
from events.db import Database
from events.ledger import Ledger
from events.private_files import private_dir, private_text, touch_private, write_private
from events.sealing import unseal
from projections.ehi_export_fold import Encoded, Fold, Resource
from projections.ehi_export_native import (
    RECORDS,
    NativeFile,
    record,
    write_checkpoints,
    write_completeness,
    write_keys,
)
from projections.fhir.common import Context
from projections.fhir.ndjson import dumps
from projections.fhir.practitioners import organization, practitioner, referenced_users
from projections.reads import PatientNotFound, Reader, record_access
from projections.runner import BATCH, KeyRing, Progress, decode_entry
from verify.canonical import format_timestamp
from verify.records import split_record

# 3: imported labs name their Document. 4: Practitioner and Organization resources, references
# that resolve within the export, MedicationRequest, subsets under their own ids, US Core;
# absolute URLs, the docs URL, README, _type, _since; source times read.
FORMAT = "chartledger-ehi-export/5"
DOCUMENTATION = "docs/EHI_EXPORT.md"
DOC_SOURCE = Path(__file__).resolve().parent.parent / DOCUMENTATION
MANIFEST = "manifest.json"
README = "README.md"  # every export's own: its format and where that is documented, publicly
# The documentation's public address when nothing else is configured: the copy a server
# publishes, without login, at ``/docs/EHI_EXPORT.md`` (CHARTLEDGER_EXPORT_DOCS_URL to change).
DOCS_PATH = "docs/EHI_EXPORT.md"
DEFAULT_BASE_URL = "http://127.0.0.1:8000/"  # ``chartledger serve``'s own default address
EXTENSION = "https://chartledger.local/fhir/ehi-export"
# The order of the manifest's output: the patient first, then the record around them.
RESOURCE_TYPES = (
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Appointment",
    "Observation",
    "Condition",
    "MedicationRequest",
    "AllergyIntolerance",
    "DocumentReference",
    "Binary",
    "Communication",
    "Provenance",
    "AuditEvent",
)
DOCUMENTATION_COPY = "EHI_EXPORT.md"  # the copy of the documentation in every export
ACCESS_BATCH = 1_000  # export Access events per save
# Underscores for EHI_EXPORT.md, the documentation every export carries.
FILE_NAME = re.compile(r"(?:native/)?[A-Za-z_]+\.(?:ndjson|msgpack|json|md)", re.ASCII)


class ExportError(Exception):
    """An export that cannot be made or found; the message names ids and paths only."""


class OutputExists(ExportError):
    """The destination folder exists already: an export never writes over anything."""


class ExportNotFound(ExportError, LookupError):
    """No finished export (or no such file in it) with that id."""


@dataclass(frozen=True)
class ExportRequest:
    """Who exports what and why: one patient (``patient_id``) or everyone (None)."""

    reader: Reader
    patient_id: UUID | None
    request: str  # the manifest's ``request``: the kick-off URL (for the CLI, its equivalent)
    requires_access_token: bool = False
    export_id: UUID = field(default_factory=uuid4)
    # Where the export's files are served (``<base>exports/<id>/<file>``): the manifest's URLs
    # are then absolute, as Bulk Data clients need; None (a local export): relative to it.
    base_url: str | None = None
    documentation_url: str = DEFAULT_BASE_URL + DOCS_PATH
    types: frozenset[str] | None = None  # Bulk Data ``_type``: only these resources; None: all
    since: str | None = None  # ``_since`` in the timestamp form: only resources changed since

    def url_of(self, name: str) -> str:
        """The manifest's URL of the export's file ``name``."""
        if self.base_url is None:
            return name
        return f"{self.base_url}exports/{self.export_id}/{name}"


def exports_home(ledger: Ledger) -> Path:
    return ledger.config.home / "exports"


@dataclass(frozen=True)
class BegunExport:
    """An export recorded and not yet written: the log size it covers, and whose it is."""

    request: ExportRequest
    size: int
    transaction_time: str
    subject: str | None
    positions: list[int] | None
    scope: str


def export(
    ledger: Ledger, request: ExportRequest, out: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Record the export, write it to ``out`` (which must not exist) and return its manifest."""
    return write_export(ledger, begin_export(ledger, request, out), out, progress)


def begin_export(ledger: Ledger, request: ExportRequest, out: Path) -> BegunExport:
    """Refuse an export that cannot be made (``out`` exists, no such patient: recorded as a
    failed export) or record it, one ``export`` access per patient; nothing is written yet."""
    if out.exists():
        raise OutputExists(f"{out} exists already: choose a new folder")
    db = ledger.db
    size = _log_size(db)
    transaction_time = format_timestamp(datetime.now(UTC))
    subject = None if request.patient_id is None else f"patient:{request.patient_id}"
    positions = None if subject is None else _chain(db, subject, size)
    patients = _patients(db, size) if subject is None else [request.patient_id]
    scope = "patient" if subject is not None else "all"
    detail = {"export_id": str(request.export_id), "scope": scope, "log_size": size}
    if positions is not None and not positions:
        record_access(ledger, request.reader, "export", "chart", patients, "failure", detail)
        raise PatientNotFound(f"no record of patient {request.patient_id}")
    for start in range(0, max(len(patients), 1), ACCESS_BATCH):
        chunk = list(patients[start : start + ACCESS_BATCH]) or [None]
        record_access(ledger, request.reader, "export", "chart", chunk, "success", detail)
    return BegunExport(request, size, transaction_time, subject, positions, scope)


def write_export(
    ledger: Ledger, begun: BegunExport, out: Path, progress: Progress | None = None
) -> dict[str, Any]:
    """Write a recorded export into a staging folder beside ``out`` and move it into place
    whole; on any failure (a cancel raised by ``progress`` too) the staging folder goes."""
    request = begun.request
    context = Context(ledger.practice["practice_id"], ledger.origin, begun.transaction_time)
    staging = out.parent / f".{out.name}.partial-{request.export_id.hex}"
    private_dir(staging, exist_ok=False)
    try:
        with _without_cycle_collection():
            files = _write(ledger, staging, context, begun, progress)
        manifest = _manifest(request, context, begun.scope, begun.size, files)
        write_private(staging / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
        write_private(staging / README, readme(manifest).encode())
        if DOC_SOURCE.exists():
            shutil.copyfile(DOC_SOURCE, touch_private(staging / "EHI_EXPORT.md"))
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Python's cycle collector off while the log is folded: the fold keeps every record it
    replays alive, and each collection would walk them all again (it made decoding 2-3 times
    slower). Reference counting still frees everything else; cycles are collected after."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _write(
    ledger: Ledger, folder: Path, context: Context, begun: BegunExport, progress: Progress | None
) -> dict[str, Any]:
    subject, size, positions = begun.subject, begun.size, begun.positions
    since = begun.request.since
    native_folder = folder / "native"
    private_dir(native_folder, exist_ok=False)
    ndjson = NdjsonFiles(folder, begun.request.types)
    native = NativeFile(native_folder, RECORDS)
    fold = Fold(context, (lambda s: True) if subject is None else (lambda s: s == subject))
    keys = KeyRing(ledger.data_keys)
    if subject is None:
        keys.preload()
    mapper = keys.mapper()
    total = size if positions is None else len(positions)
    done = 0
    try:
        for rows in _rows(ledger.db, size, positions):
            for position, leaf, stream, version, topic, state in rows:
                state = bytes(state)
                entry = decode_entry(mapper, position, stream, version, topic, state)
                header_bytes, sealed = split_record(state)
                salt = payload = None
                header = entry.header
                # A login secret's payload never leaves the practice (docs/EHI_EXPORT.md §7.1).
                if entry.event is not None and header.type not in SECRET_EVENT_TYPES:
                    data_key = keys.get(header.key)
                    salt, payload = unseal(data_key, header.stream, header.version, sealed)
                native.add(record(position, bytes(leaf), header_bytes, salt, payload))
                made = fold.add(entry)  # folded whatever its time: later state builds on it
                if since is None or header.recorded >= since:
                    ndjson.write(made)
            done += len(rows)
            if progress is not None:
                progress(done, total)
        ndjson.write(fold.finish() if since is None else changed_since(fold.finish(), since))
        ndjson.write([organization(context, ledger.practice.get("name"))])
        users = _users(ledger.db, mapper, size, sorted(ndjson.users))
        ndjson.write([practitioner(u, users.get(u)) for u in sorted(ndjson.users)])
    finally:  # closed on failure too, before the staging folder is removed
        output = ndjson.close(begun.request.url_of)
        natives = [native.close()]
    with ledger.db.read() as c:
        natives += [write_checkpoints(c, native_folder, size), write_keys(c, native_folder)]
        if subject is not None:
            natives.append(write_completeness(c, native_folder, subject, size))
    return {"output": output, "native": natives}


def changed_since(resources: Iterator[Resource], since: str) -> Iterator[Resource]:
    """The records' resources last changed at or after ``since`` (timestamp form, so compared
    as text): by ``meta.lastUpdated``, or a Provenance's ``recorded``; a Binary goes with the
    resource before it (its DocumentReference or Observation); anything else is kept."""
    kept = True
    for resource in resources:
        changed = resource.get("meta", {}).get("lastUpdated") or resource.get("recorded")
        if isinstance(changed, str):
            kept = changed >= since
        elif resource["resourceType"] != "Binary":
            kept = True
        if kept:
            yield resource


class NdjsonFiles:
    """One ``<ResourceType>.ndjson`` per type met, opened when its first resource comes; with
    ``types``, resources of other types are left out (Bulk Data ``_type``)."""

    def __init__(self, folder: Path, types: frozenset[str] | None = None) -> None:
        self.folder = folder
        self.types = types
        self.files: dict[str, IO[str]] = {}
        self.counts: dict[str, int] = {}
        self.users: set[str] = set()  # the users the written resources reference

    def write(self, resources: Iterator[Resource] | list[Resource | Encoded]) -> None:
        types = self.types
        for resource in resources:
            if type(resource) is Encoded:
                kind, line = resource
                if types is not None and kind not in types:
                    continue
            else:
                kind = resource["resourceType"]
                if types is not None and kind not in types:
                    continue
                line = dumps(resource)
            out = self.files.get(kind)
            if out is None:
                path = self.folder / f"{kind}.ndjson"
                out = private_text(path, encoding="ascii", newline="\n")
                self.files[kind] = out
                self.counts[kind] = 0
            out.write(line + "\n")
            self.counts[kind] += 1
            if "Practitioner/" in line:
                self.users.update(referenced_users(line))

    def close(self, url_of: Callable[[str], str] = str) -> list[dict[str, Any]]:
        for out in self.files.values():
            out.close()
        order = {kind: n for n, kind in enumerate(RESOURCE_TYPES)}
        kinds = sorted(self.files, key=lambda k: (order.get(k, len(order)), k))
        return [{"type": k, "url": url_of(f"{k}.ndjson"), "count": self.counts[k]} for k in kinds]


def _manifest(
    request: ExportRequest, context: Context, scope: str, size: int, files: dict[str, Any]
) -> dict[str, Any]:
    """The FHIR Bulk Data export manifest: URLs absolute when the export is served (else
    relative to the manifest); the format's public documentation as a ``describedby`` link
    and in the extension (the manifest has no field of its own for it)."""
    native = [{**n, "url": request.url_of(n["url"])} for n in files["native"]]
    return {
        "transactionTime": context.transaction_time,
        "request": request.request,
        "requiresAccessToken": request.requires_access_token,
        "output": files["output"],
        "error": [],
        "link": [
            {"relation": "describedby", "url": request.documentation_url},
            {"relation": "alternate", "url": request.url_of(DOCUMENTATION_COPY)},
        ],
        "extension": {
            EXTENSION: {
                "format": FORMAT,
                "documentation": request.documentation_url,
                "documentationCopy": request.url_of(DOCUMENTATION_COPY),
                **({"types": sorted(request.types)} if request.types is not None else {}),
                **({"since": request.since} if request.since is not None else {}),
                "exportId": str(request.export_id),
                "scope": scope,
                **({"patient": str(request.patient_id)} if request.patient_id else {}),
                "exportedBy": str(request.reader.user_id),
                "purposeOfUse": request.reader.purpose_of_use,
                "origin": context.origin,
                "logSize": size,
                "native": native,
            }
        },
    }


def readme(manifest: dict[str, Any]) -> str:
    """The export's README.md: what it is, and where its format is documented publicly (ONC
    170.315(b)(10)(i)(E), (ii)(B)); ids, URLs and counts only."""
    made = manifest["extension"][EXTENSION]
    lines = [
        "# Chartledger EHI export",
        "",
        f"Format: `{made['format']}`, FHIR R4 Bulk Data NDJSON with the ledger's own records.",
        "",
        f"Documentation of this format (public): {made['documentation']}",
        f"(a copy of that document is in this export: `{DOCUMENTATION_COPY}`)",
        "",
        f"- export: `{made['exportId']}`, scope `{made['scope']}`, made "
        f"{manifest['transactionTime']} at log size {made['logSize']}",
        f"- request: {manifest['request']}",
        "- manifest: `manifest.json` (FHIR Bulk Data export manifest)",
    ]
    export_id = made["exportId"]
    for o in manifest["output"]:
        lines.append(f"- `{file_name(o['url'], export_id)}`: {o['count']} {o['type']}")
    for n in made["native"]:
        lines.append(f"- `{file_name(n['url'], export_id)}`: the ledger's own records")
    return "\n".join(lines) + "\n"


def file_name(url: str, export_id: str) -> str:
    """The name within export ``export_id`` of a manifest's file ``url`` (absolute or not)."""
    folder = f"/exports/{export_id}/"
    return url.rpartition(folder)[2] if folder in url else url


def _users(db: Database, mapper: Any, size: int, user_ids: list[str]) -> dict[str, User]:
    """The records of the users named, replayed from their own events below ``size`` (so a
    single-patient export, whose range holds none of them, names them too). A user whose
    record is not in the log, or cannot be read, is left out: the Practitioner then has its
    id only."""
    found: dict[str, User] = {}
    streams = []
    for user_id in user_ids:
        try:
            stream = UUID(user_id)
        except ValueError:
            continue
        streams.append(stream.hex if db.dialect == "sqlite" else stream)
    for start in range(0, len(streams), 500):
        chunk = streams[start : start + 500]
        with db.read() as c:
            c.execute(
                USER_ROWS + f"WHERE e.originator_id IN ({', '.join('?' * len(chunk))}) "
                "AND e.position < ? ORDER BY l.position",
                [*chunk, size],
            )
            rows = c.fetchall()
        states: dict[str, Any] = {}
        for position, _, stream, version, topic, state in rows:
            entry = decode_entry(mapper, position, stream, version, topic, bytes(state))
            key = str(UUID(str(entry.header.stream)))
            if entry.event is None or (key in states and states[key] is None):
                states[key] = None  # a payload disposed of: the rest cannot be replayed
                continue
            try:
                states[key] = entry.event.mutate(states.get(key))
            except Exception:
                states[key] = None  # not a record this export can replay: the id only
        found.update({k: v for k, v in states.items() if isinstance(v, User)})
    return found


def _log_size(db: Database) -> int:
    with db.read() as c:
        c.execute("SELECT MAX(position) FROM ledger_leaves")
        row = c.fetchone()
    return 0 if row is None or row[0] is None else int(row[0]) + 1


def _patients(db: Database, size: int) -> list[UUID]:
    """Every patient the log names below ``size`` (their first link), in order of appearance."""
    with db.read() as c:
        c.execute(
            "SELECT subject FROM ledger_links WHERE seq = 1 AND position < ? "
            "AND subject LIKE ? ORDER BY position, subject",
            (size, "patient:%"),
        )
        return [UUID(row[0].removeprefix("patient:")) for row in c.fetchall()]


def _chain(db: Database, subject: str, size: int) -> list[int]:
    with db.read() as c:
        c.execute(
            "SELECT position FROM ledger_links WHERE subject = ? AND position < ? ORDER BY seq",
            (subject, size),
        )
        return [int(row[0]) for row in c.fetchall()]


ROWS = (
    "SELECT l.position, l.leaf, e.originator_id, e.originator_version, e.topic, e.state "
    "FROM ledger_leaves l JOIN stored_events e "
    "ON e.originator_id = l.stream AND e.originator_version = l.version "
)
# The same rows found from the events' key (a few users' streams): ledger_leaves has no index on
# its streams, so ROWS with "l.stream IN (...)" read every leaf (138 ms at 1M events on
# PostgreSQL, growing with the log); here each event is found by its key, and its leaf by the
# event's position (the leaf's key) and checked to be the event's.
USER_ROWS = (
    "SELECT l.position, l.leaf, e.originator_id, e.originator_version, e.topic, e.state "
    "FROM stored_events e JOIN ledger_leaves l ON l.position = e.position "
    "AND l.stream = e.originator_id AND l.version = e.originator_version "
)


def _rows(db: Database, size: int, positions: list[int] | None) -> Iterator[list[Any]]:
    """The exported events with their leaves, in log order, a batch at a time."""
    if positions is None:
        for start in range(0, size, BATCH):
            with db.read() as c:
                c.execute(
                    ROWS + "WHERE l.position >= ? AND l.position < ? ORDER BY l.position",
                    (start, min(start + BATCH, size)),
                )
                yield c.fetchall()
        return
    for start in range(0, len(positions), 500):
        chunk = positions[start : start + 500]
        with db.read() as c:
            c.execute(
                ROWS + f"WHERE l.position IN ({', '.join('?' * len(chunk))}) ORDER BY l.position",
                chunk,
            )
            yield c.fetchall()


def exported_patients(db: Database, home: Path, export_id: UUID) -> list[UUID]:
    """The patients a finished export under ``home`` carries, as its manifest says: its one
    patient, or every patient the log named below the size it was made at (as recorded by
    ``export``, so a download names the same patients the export did)."""
    manifest = json.loads((home / str(export_id) / MANIFEST).read_text(encoding="utf-8"))
    made = manifest["extension"][EXTENSION]
    if made["scope"] == "patient":
        return [UUID(made["patient"])]
    return _patients(db, int(made["logSize"]))


def finished_file(home: Path, export_id: UUID, name: str) -> Path:
    """A file of a finished export under ``home``; ExportNotFound for anything else."""
    if FILE_NAME.fullmatch(name) is None:
        raise ExportNotFound(f"export {export_id} has no file {name!r}")
    path = home / str(export_id) / name
    if not path.is_file():
        raise ExportNotFound(f"export {export_id} has no file {name!r}")
    return path
