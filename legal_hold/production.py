"""Producing a matter: one e-discovery bundle (docs/BUNDLE_FORMAT.md) and its ledger event.

In order: check the request (nothing is written if it is refused); record the production as a
read of every patient in scope (a production discloses PHI, DESIGN.md rule 6); sign a checkpoint
of the log as it now stands; gather every event of the subjects in scope with its proofs; write
the natives, the review files and the signed manifest into a ZIP beside ``out``, and move it into
place; then record the production (who, when, scope, the bundle's SHA-256) as a ledger event.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from domain.access import Access
from domain.base import user_subject
from events.context import acting
from events.ledger import Ledger
from events.log import tree_size
from events.private_files import touch_private
from legal_hold.holds import Hold, Scope, all_holds, get_matter
from legal_hold.production_errors import InvalidProduction, NothingToProduce
from legal_hold.production_gather import (
    Gathered,
    evidence_streams,
    gather,
    patient_subjects,
    positions_of,
    streams_positions,
    subjects_present,
)
from legal_hold.production_natives import NativeFile, write_natives
from legal_hold.production_review import (
    bates_prefix,
    privilege_log,
    timelines,
    write_review_files,
)
from legal_hold.production_scope import HOLD_EVENTS, PATIENT, subjects_in_scope
from legal_hold.production_witness import send_out, write_witness_files
from legal_hold.productions import Production
from legal_hold.review.items import ReviewInput
from verify import bundle_format as bf
from verify.canonical import encode, format_timestamp
from verify.keyhistory import key_for_size

Progress = Callable[[int, int], None]
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # fixed, so the same content gives the same bytes
CLAIM_LIMIT = 200


@dataclass(frozen=True)
class Produced:
    production_id: UUID
    path: Path
    sha256: str
    size: int
    events: int
    checkpoint_size: int
    subjects: tuple[str, ...]


def produce(
    ledger: Ledger,
    matter_id: UUID,
    out: Path,
    *,
    by: UUID,
    withhold: Mapping[int, str] | None = None,
    since: int | None = None,
    at: datetime | None = None,
    production_id: UUID | None = None,
    session: str = "cli",
    progress: Progress | None = None,
    review_progress: Progress | None = None,
) -> Produced:
    """Write the matter's bundle to ``out`` (which must not exist) and record the production."""
    out = Path(out)
    claims = _checked_claims(withhold or {})
    matter, holds, subjects, present = _checked_request(ledger, matter_id, out, claims, since)
    scopes = [hold.scope for hold in holds]
    evidence = evidence_streams(ledger, [hold.id for hold in holds], subjects)
    _refuse_claims_on_evidence(ledger, evidence, claims)
    at = at or datetime.now(UTC)
    # Only patients with a record are disclosed: a read of nobody's chart would start one.
    _record_disclosure(ledger, by, session, matter_id, present, at)
    checkpoint = ledger.checkpointer.issue()
    send_out(ledger)
    found = gather(ledger, checkpoint, subjects, scopes, claims, since, progress, evidence=evidence)
    manifest_fields = _manifest_fields(ledger, matter, holds, by, at, found, subjects)
    digest, size = _write_bundle(ledger, out, found, manifest_fields, subjects, review_progress)
    production = Production(
        production_id=production_id or uuid4(),
        matter_id=matter_id,
        produced_at=at,
        produced_by=by,
        bundle_name=out.name,
        bundle_sha256=digest,
        bundle_size=size,
        checkpoint_size=checkpoint.size,
        checkpoint_root=checkpoint.root.hex(),
        since_size=since,
        holds=[hold.id for hold in holds],
        produced_subjects=list(subjects),
        event_count=len(found.records),
        withheld=_withheld(found),
    )
    with acting(user_subject(by), session):
        ledger.save(production)
    return Produced(
        production.id, out, digest, size, len(found.records), checkpoint.size, tuple(subjects)
    )


def check_production(
    ledger: Ledger,
    matter_id: UUID,
    out: Path,
    *,
    withhold: Mapping[int, str] | None = None,
    since: int | None = None,
) -> None:
    """Refuse now what ``produce`` would refuse before writing anything (no such matter, no
    hold, nothing in scope, a bad claim or checkpoint), so a caller may answer the refusal
    before it starts the production as a job. ``produce`` checks again: holds may change."""
    claims = _checked_claims(withhold or {})
    _, holds, subjects, _ = _checked_request(ledger, matter_id, Path(out), claims, since)
    evidence = evidence_streams(ledger, [hold.id for hold in holds], subjects)
    _refuse_claims_on_evidence(ledger, evidence, claims)


def _checked_request(
    ledger: Ledger, matter_id: UUID, out: Path, claims: dict[int, str], since: int | None
) -> tuple[Any, list[Hold], list[str], list[str]]:
    """(matter, its holds, the subjects in scope, those of them with a record), or refuse
    before anything is written."""
    if out.exists() or not out.parent.is_dir():
        raise InvalidProduction(f"{out.name}: the file exists already or its folder does not")
    matter = get_matter(ledger, matter_id)
    holds = all_holds(ledger, matter_id)
    if not holds:
        raise NothingToProduce(f"matter {matter_id} has no hold, so nothing is in scope")
    with ledger.db.read() as c:
        size_now = tree_size(c)
        subjects = subjects_in_scope([h.scope for h in holds], patient_subjects(c, size_now))
        in_scope = set(positions_of(c, subjects, size_now))
        present = subjects_present(c, subjects, size_now)
        c.execute("SELECT 1 FROM ledger_checkpoints WHERE size = ?", (since or 0,))
        since_known = c.fetchone() is not None
    if since is not None and (since < 1 or not since_known):
        raise InvalidProduction(f"the log has no checkpoint at size {since}")
    if not in_scope:
        raise NothingToProduce(f"matter {matter_id}: no event of its patients or custodians yet")
    outside = sorted(set(claims) - in_scope)
    if outside:
        raise InvalidProduction(f"positions {outside[:5]} are not events of the subjects in scope")
    return matter, holds, subjects, present


def _refuse_claims_on_evidence(
    ledger: Ledger, evidence: list[UUID], claims: dict[int, str]
) -> None:
    """Hold and disposal events are what a reader derives the scope and checks disposals from:
    they are produced, never withheld (docs/BUNDLE_FORMAT.md §2.2)."""
    if not claims:
        return
    with ledger.db.read() as c:
        shown = set(streams_positions(ledger, c, evidence, tree_size(c)))
        marks = ", ".join("?" * len(claims))
        c.execute(
            f"SELECT position FROM stored_events WHERE position IN ({marks}) AND topic LIKE ?",
            (*claims, HOLD_EVENTS + "%"),
        )
        shown.update(row[0] for row in c.fetchall())
    refused = sorted(shown & set(claims))
    if refused:
        raise InvalidProduction(
            f"positions {refused[:5]} are hold or disposal events: they are produced, "
            "so that the scope can be checked, and cannot be withheld"
        )


def _checked_claims(withhold: Mapping[int, str]) -> dict[int, str]:
    claims = {}
    for position, claim in withhold.items():
        if type(position) is not int or position < 0:
            raise InvalidProduction("a withheld position must be a non-negative integer")
        if type(claim) is not str or not claim.strip() or len(claim) > CLAIM_LIMIT:
            raise InvalidProduction(
                f"the privilege claim for position {position} must be 1 to {CLAIM_LIMIT} characters"
            )
        claims[position] = claim.strip()
    return claims


def _record_disclosure(
    ledger: Ledger, by: UUID, session: str, matter_id: UUID, subjects: list[str], at: datetime
) -> None:
    patients = [UUID(s.removeprefix(PATIENT)) for s in subjects if s.startswith(PATIENT)]
    reads = [
        Access.record(
            user_id=by,
            patient_id=patient_id,
            action="disclose",
            data_category="chart",
            purpose_of_use="HLEGAL",
            outcome="success",
            at=at,
            detail={"matter": str(matter_id), "as": "production"},
        )
        for patient_id in patients
    ]
    if reads:
        with acting(user_subject(by), session):
            ledger.save(*reads)


def _scope_map(scope: Scope) -> dict[str, Any]:
    return {
        "end": None if scope.end is None else scope.end.isoformat(),
        "start": None if scope.start is None else scope.start.isoformat(),
        "patients": [str(p) for p in scope.patients],
        "categories": list(scope.categories),
        "custodians": [str(c) for c in scope.custodians],
        "all_patients": scope.all_patients,
    }


def _manifest_fields(
    ledger: Ledger,
    matter: Any,
    holds: list[Hold],
    by: UUID,
    at: datetime,
    found: Gathered,
    subjects: list[str],
) -> dict[str, Any]:
    return {
        "kind": bf.KIND,
        "format": bf.FORMAT_VERSION,
        "origin": ledger.origin,
        "matter": {
            "id": str(matter.id),
            "name": matter.name,
            "forum": matter.forum,
            "number": matter.number,
        },
        "holds": [
            {"id": str(h.id), "name": h.name, "scope": _scope_map(h.scope), "active": h.active}
            for h in holds
        ],
        "producing_party": str(ledger.practice.get("name", ledger.origin)),
        "produced_by": user_subject(by),
        "produced_at": format_timestamp(at),
        "software": {"name": "chartledger", "version": software_version()},
        "checkpoint": {"root": found.checkpoint.root, "size": found.checkpoint.size},
        "since": None if found.since_note is None else {"size": _since_size(found)},
        "subjects": [h["subject"] for h in found.heads],
        "absent": found.absent,
        "events": len(found.records),
        "withheld": _withheld(found),
    }


def _withheld(found: Gathered) -> list[list[Any]]:
    """[position, claim] of every event withheld with a claim, ascending: the producer's own
    privilege claims and the login credentials withheld under CREDENTIAL_CLAIM."""
    return [[r.position, r.claim] for r in found.records if r.status == bf.PRIVILEGED]


def _since_size(found: Gathered) -> int:
    assert found.since_note is not None
    return int(found.since_note.split(b"\n", 2)[1])


def software_version() -> str:
    try:
        return metadata.version("chartledger")
    except metadata.PackageNotFoundError:
        return "unknown"


def _write_bundle(
    ledger: Ledger,
    out: Path,
    found: Gathered,
    fields: dict[str, Any],
    subjects: list[str],
    review_progress: Progress | None,
) -> tuple[str, int]:
    """Lay the bundle out in a temporary folder beside ``out``, then zip it into place."""
    with tempfile.TemporaryDirectory(prefix=".producing-", dir=out.parent) as tmp:
        root = Path(tmp) / "bundle"
        root.mkdir()
        _write_ledger_files(root, found)
        write_witness_files(root, ledger.db, found.note, found.checkpoint.size)
        natives = write_natives(root, found.records, found.headers)
        review = _review_input(ledger, found, fields, natives, subjects)
        write_review_files(root, review, review_progress)
        fields["natives"] = [
            {"path": n.path, "field": n.field, "position": n.position} for n in natives
        ]
        fields["files"] = _file_list(root)
        manifest = encode(fields)
        key = key_for_size(ledger.key_history(), found.checkpoint.size)
        signing_key = ledger.signing_key(key.key_id)
        signature = encode({"key_id": key.key_id, "signature": signing_key.sign(manifest)})
        # zipfile would create it 0644 less the umask; the bundle carries PHI, so it is made
        # 0600 first, and keeps that mode when renamed into place.
        partial = touch_private(Path(tmp) / "bundle.zip")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            archive.writestr(_info(bf.MANIFEST), manifest)
            archive.writestr(_info(bf.SIGNATURE), signature)
            for entry in fields["files"]:
                with (
                    (root / entry["path"]).open("rb") as source,
                    archive.open(_info(entry["path"]), "w", force_zip64=True) as target,
                ):
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
        digest, size = _sha256_file(partial)
        os.replace(partial, out)
    return digest, size


def _write_ledger_files(root: Path, found: Gathered) -> None:
    (root / bf.KEYS).write_bytes(encode(found.key_rows))
    (root / bf.CHECKPOINT).write_bytes(found.note)
    if found.since_note is not None:
        (root / bf.SINCE).write_bytes(found.since_note)
    proofs = {
        "heads": found.heads,
        "absent": found.absences,
        "inclusion": found.inclusion,
        "heads_size": found.heads_size,
        "consistency": found.consistency,
    }
    (root / bf.PROOFS).write_bytes(encode(proofs))
    with (root / bf.EVENTS).open("wb") as events:
        for record in found.records:
            events.write(bf.frame(bf.encode_record(record)))


def _review_input(
    ledger: Ledger,
    found: Gathered,
    fields: dict[str, Any],
    natives: list[NativeFile],
    subjects: list[str],
) -> ReviewInput:
    matter = fields["matter"]
    return ReviewInput(
        matter_name=matter["name"],
        matter_number=matter["number"],
        forum=matter["forum"],
        producing_party=fields["producing_party"],
        produced_at=fields["produced_at"],
        bates_prefix=bates_prefix(matter["number"]),
        checkpoint_size=found.checkpoint.size,
        checkpoint_root=found.checkpoint.root.hex(),
        checkpoint_key_id=found.checkpoint.key_id,
        format_version=str(bf.FORMAT_VERSION),
        software_version=fields["software"]["version"],
        timelines=timelines(found.records, found.headers, subjects),
        natives=tuple(n.item for n in natives),
        privileged=privilege_log(found.records, found.headers),
        event_count=len(found.records),
        extra={"genesis_key_id": str(ledger.practice.get("genesis_key_id", ""))},
    )


def _file_list(root: Path) -> list[dict[str, Any]]:
    files = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest, size = _sha256_file(path)
        name = path.relative_to(root).as_posix()
        files.append({"path": name, "size": size, "sha256": bytes.fromhex(digest)})
    files.sort(key=lambda f: f["path"].encode())
    return files


def _info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return info


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as source:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
