"""Check an e-discovery bundle against docs/BUNDLE_FORMAT.md, trusting only its bytes, hashes
and signatures.

Every check gives one line: ``OK <item>: ...`` or ``FAIL <item>: ...``, where the item is the
manifest, the key history, a checkpoint, a file, an event (by position), a native, the inclusion
proof, a subject's completeness or absence, the consistency proof, a hold, a subject, the scope
or the privilege log (the list of docs/BUNDLE_FORMAT.md §10). A damaged part fails its own items
and whatever depends on it; the rest are still checked. Nothing here raises for bad input: a
bundle that cannot be read at all is one FAIL line.

The manifest is the producer's statement. The scope is not taken from it: it is derived from the
matter's hold events (produced, proven included like every record) and the manifest is held to
it, and so is every record's status (``verify.bundle_scope``).
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from verify import bundle_format as bf
from verify import bundle_scope as sc
from verify.bundle_container import NATIVE_FIELDS, name_problem, native_path, strictly_ascending
from verify.bundle_events import Checked, Outcome, check_records, frames
from verify.bundle_privilege import PRIVILEGE_LOG, cell, privilege_rows
from verify.bundle_witness import check_witness_area
from verify.canonical import decode, decode_fixed_map, encode, key_order
from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
from verify.cosignature import Vkey
from verify.errors import ChainBroken, MalformedInput, ProofInvalid, VerificationError
from verify.hashing import short
from verify.keyhistory import KeyStatement, key_for_size, verify_key_history
from verify.merkle import leaf_hash, verify_consistency, verify_inclusion
from verify.records import head_bytes
from verify.signing import verify_signature

__all__ = ["BundleReport", "Line", "check_bundle", "verify_bundle"]

Progress = Callable[[int, int], None]


def _canonical(*keys: str) -> tuple[str, ...]:
    return tuple(sorted(keys, key=key_order))


MANIFEST_KEYS = _canonical(
    "kind", "files", "holds", "absent", "events", "format", "matter", "origin", "since", "natives",
    "software", "subjects", "withheld", "checkpoint", "produced_at", "produced_by",
    "producing_party",
)  # fmt: skip
SIGNATURE_KEYS = _canonical("key_id", "signature")
PROOF_KEYS = _canonical("heads", "absent", "inclusion", "heads_size", "consistency")
ABSENCE_KEYS = _canonical("lower", "upper", "subject")
HEAD_KEYS = _canonical("seq", "index", "proof", "subject", "position")
FILE_KEYS = _canonical("path", "size", "sha256")
NATIVE_KEYS = _canonical("path", "field", "position")
CHECKPOINT_KEYS = _canonical("root", "size")


class Line:
    __slots__ = ("item", "ok", "text")

    def __init__(self, ok: bool, item: str, text: str) -> None:
        self.ok, self.item, self.text = ok, item, text

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'FAIL'} {self.item}: {self.text}"


@dataclass
class BundleReport:
    location: str
    lines: list[Line] = field(default_factory=list)
    events: int = 0
    checkpoint_size: int | None = None

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.ok for line in self.lines)

    @property
    def failures(self) -> list[Line]:
        return [line for line in self.lines if not line.ok]

    def good(self, item: str, text: str) -> None:
        self.lines.append(Line(True, item, text))

    def bad(self, item: str, text: str) -> None:
        self.lines.append(Line(False, item, text))


@dataclass
class _Manifest:
    raw: dict[str, Any]
    files: dict[str, tuple[int, bytes]]
    checkpoint_size: int
    checkpoint_root: bytes
    since_size: int | None
    subjects: list[str]
    absent: list[str]
    withheld: dict[int, str]
    natives: list[tuple[str, int, str]]
    origin: str


def verify_bundle(
    path: str | Path,
    trusted_key: str | None = None,
    workers: int = 1,
    trusted_witnesses: list[Vkey] | None = None,
    trusted_tsas: list[x509.Certificate] | None = None,
) -> BundleReport:
    """Check the bundle at ``path``; the report's ``ok`` says whether every item passed."""
    return check_bundle(
        Path(path),
        trusted_key,
        workers=workers,
        trusted_witnesses=trusted_witnesses,
        trusted_tsas=trusted_tsas,
    )


def check_bundle(
    path: Path,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    trusted_witnesses: list[Vkey] | None = None,
    trusted_tsas: list[x509.Certificate] | None = None,
) -> BundleReport:
    report = BundleReport(str(path))
    entries = _read_entries(path, report)
    if entries is None:
        return report
    manifest = _check_manifest_shape(entries, report)
    history = _check_key_history(entries, report, trusted_key)
    checkpoint = _check_checkpoint(entries.get(bf.CHECKPOINT), bf.CHECKPOINT, history, report)
    if manifest is None:
        return report
    # The event records first: checked in worker processes while this one does the rest.
    events = _start_events(entries.get(bf.EVENTS), manifest, workers, progress)
    _check_signature(entries, manifest, checkpoint, history, report)
    _check_files(entries, manifest, report)
    if checkpoint is not None:
        report.checkpoint_size = checkpoint.size
        if checkpoint.origin != manifest.origin:
            report.bad("checkpoint", f"origin {checkpoint.origin!r} is not the manifest's")
        if (checkpoint.size, checkpoint.root) != (
            manifest.checkpoint_size,
            manifest.checkpoint_root,
        ):
            report.bad(
                "checkpoint",
                f"size {checkpoint.size}, root {short(checkpoint.root)}: the manifest names "
                f"size {manifest.checkpoint_size}, root {short(manifest.checkpoint_root)}",
            )
    records = _check_events(events, manifest, report)
    proofs = _parse_proofs(entries.get(bf.PROOFS), report)
    if checkpoint is not None and proofs is not None:
        _check_inclusion(records, proofs, checkpoint, report)
        _check_completeness(records, proofs, manifest, checkpoint, report)
        _check_absences(proofs, manifest, checkpoint, report)
        _check_consistency(entries, proofs, manifest, checkpoint, history, report)
    elif checkpoint is None:
        report.bad("inclusion", "no valid checkpoint to prove the events against")
    payloads = _evidence_payloads(entries, records)
    _check_scope(records, payloads, manifest, report)
    _check_privilege_log(entries, records, manifest, report)
    _check_natives(entries, records, payloads, manifest, report)
    check_witness_area(
        entries,
        entries.get(bf.CHECKPOINT),
        checkpoint is not None,
        trusted_witnesses or [],
        report,
        trusted_tsas,
    )
    report.events = len(records)
    return report


# --- (1) the container ----------------------------------------------------------------------


def _read_entries(path: Path, report: BundleReport) -> dict[str, bytes] | None:
    """Every entry's bytes by name. CRCs are not trusted or needed: the signed manifest's
    SHA-256s say whether a file is intact, and a flipped byte must name its item, not stop."""
    # A damaged archive makes zipfile raise almost anything (BadZipFile, RuntimeError for a
    # flipped "encrypted" flag, NotImplementedError for a flipped method, zlib.error, ...):
    # every one of them is a failure of the bundle, named, never a traceback.
    try:
        archive = zipfile.ZipFile(path)
    except Exception as e:
        report.bad("bundle", f"not a readable Chartledger bundle (ZIP): {e}")
        return None
    entries: dict[str, bytes] = {}
    with archive:
        for info in archive.infolist():
            name = info.filename
            if name in entries:
                report.bad(f"file {name}", "appears twice in the archive")
                continue
            problem = name_problem(name, info.compress_type)
            if problem is not None:
                report.bad(f"file {name}", problem)
            if info.is_dir():
                continue
            del info.CRC  # read the bytes as they are; integrity is the manifest's job
            try:
                with archive.open(info) as handle:
                    entries[name] = handle.read()
            except Exception as e:
                report.bad(f"file {name}", f"cannot be read from the archive: {e}")
    if bf.MANIFEST not in entries:
        report.bad("manifest", f"the bundle has no {bf.MANIFEST}")
        return None
    return entries


# --- (2) manifest, key history, checkpoint, signature ------------------------------------------


def _check_manifest_shape(entries: dict[str, bytes], report: BundleReport) -> _Manifest | None:
    try:
        m = decode_fixed_map(entries[bf.MANIFEST], MANIFEST_KEYS, "manifest")
        if m["kind"] != bf.KIND or m["format"] != bf.FORMAT_VERSION:
            raise MalformedInput(
                f"kind {m['kind']!r} format {m['format']!r}: this verifier reads "
                f"{bf.KIND} format {bf.FORMAT_VERSION}"
            )
        files = {}
        for f in _list(m["files"], "files"):
            item = _fixed(f, FILE_KEYS, "files entry")
            if type(item["path"]) is not str or type(item["size"]) is not int:
                raise MalformedInput("a files entry needs a text path and an integer size")
            if item["path"] in bf.UNSIGNED:
                raise MalformedInput(f"files lists {item['path']}, which it cannot sign")
            files[item["path"]] = (item["size"], _hash(item["sha256"], "files sha256"))
        if len(files) != len(m["files"]):
            raise MalformedInput("files lists a path twice")
        cp = _fixed(m["checkpoint"], CHECKPOINT_KEYS, "manifest checkpoint")
        since = m["since"]
        if since is not None:
            since = _int(_fixed(since, ("size",), "manifest since")["size"], "since size")
        withheld = {}
        for w in _list(m["withheld"], "withheld"):
            if type(w) is not list or len(w) != 2 or type(w[1]) is not str:
                raise MalformedInput("a withheld entry is [position, claim]")
            withheld[_int(w[0], "withheld position")] = w[1]
        natives = []
        for n in _list(m["natives"], "natives"):
            item = _fixed(n, NATIVE_KEYS, "natives entry")
            if type(item["path"]) is not str or type(item["field"]) is not str:
                raise MalformedInput("a natives entry needs a text path and field")
            natives.append((item["path"], _int(item["position"], "native position"), item["field"]))
        subjects = _list(m["subjects"], "subjects")
        absent = _list(m["absent"], "absent")
        if not all(type(s) is str for s in subjects + absent) or type(m["origin"]) is not str:
            raise MalformedInput("subjects, absent and origin must be text")
        _int(m["events"], "events")
        _ascending(list(files), str.encode, "files", "path")
        _ascending(subjects, str.encode, "subjects", "subject")
        _ascending(absent, str.encode, "absent", "subject")
        _ascending([w[0] for w in m["withheld"]], None, "withheld", "position")
        _ascending([n[1] for n in natives], None, "natives", "position")
        both = sorted(set(subjects) & set(absent))
        if both:
            raise MalformedInput(f"{both[0]} is in both subjects and absent")
        _list(m["holds"], "holds")
        manifest = _Manifest(
            raw=m,
            files=files,
            checkpoint_size=_int(cp["size"], "checkpoint size"),
            checkpoint_root=_hash(cp["root"], "checkpoint root"),
            since_size=since,
            subjects=subjects,
            absent=absent,
            withheld=withheld,
            natives=natives,
            origin=m["origin"],
        )
    except VerificationError as e:
        report.bad("manifest", str(e))
        return None
    matter = m["matter"] if type(m["matter"]) is dict else {}
    report.good(
        "manifest",
        f"matter {matter.get('number')!r}, {m['events']} events, {len(subjects)} subjects, "
        f"{len(files)} files, produced {m['produced_at']} by {m['produced_by']}",
    )
    return manifest


def _check_key_history(
    entries: dict[str, bytes], report: BundleReport, trusted_key: str | None
) -> list[KeyStatement] | None:
    try:
        rows = decode(_entry(entries, bf.KEYS))
        if type(rows) is not list:
            raise MalformedInput("the key history is an array of statements")
        checked = []
        for seq, row in enumerate(rows):
            if type(row) is not list or len(row) != 3:
                raise MalformedInput(f"key statement {seq}: want [statement, self sig, prev sig]")
            statement, own, prev = row
            if type(statement) is not bytes or type(own) is not bytes:
                raise MalformedInput(f"key statement {seq}: statement and signature are bytes")
            if prev is not None and type(prev) is not bytes:
                raise MalformedInput(f"key statement {seq}: previous signature is bytes or nil")
            checked.append((seq, statement, own, prev))
        history = verify_key_history(checked, trusted_key)
    except VerificationError as e:
        report.bad("key history", str(e))
        return None
    pinned = f", statement 0 pinned to {trusted_key[:16]}…" if trusted_key else ""
    report.good("key history", f"{len(history)} key(s), origin {history[0].origin}{pinned}")
    return history


def _check_checkpoint(
    note: bytes | None, item: str, history: list[KeyStatement] | None, report: BundleReport
) -> UnverifiedCheckpoint | None:
    if note is None:
        report.bad(item, "missing from the bundle")
        return None
    try:
        checkpoint = parse_note(note)
        signers = [(name, key_hash) for name, key_hash, _ in checkpoint.signatures]
        if len(set(signers)) != len(signers):
            # Which of two lines by one key would count is left to no reader to guess.
            raise MalformedInput("two signature lines by the same key")
        if history is None:
            raise VerificationError("no verified key history to check its signature against")
        if checkpoint.origin != history[0].origin:
            raise VerificationError(
                f"origin {checkpoint.origin!r} is not the key history's {history[0].origin!r}: "
                "a checkpoint of another log"
            )
        verify_checkpoint(checkpoint, key_for_size(history, checkpoint.size).public_key)
    except VerificationError as e:
        report.bad(item, str(e))
        return None
    report.good(item, f"size {checkpoint.size}, root {short(checkpoint.root)}, signed")
    return checkpoint


def _check_signature(
    entries: dict[str, bytes],
    manifest: _Manifest,
    checkpoint: UnverifiedCheckpoint | None,
    history: list[KeyStatement] | None,
    report: BundleReport,
) -> None:
    try:
        sig = decode_fixed_map(_entry(entries, bf.SIGNATURE), SIGNATURE_KEYS, "manifest signature")
        if history is None:
            raise VerificationError("no verified key history to check it against")
        key = key_for_size(history, manifest.checkpoint_size)
        if sig["key_id"] != key.key_id:
            raise VerificationError(
                f"names key {str(sig['key_id'])[:16]}…, the key in force at size "
                f"{manifest.checkpoint_size} is {key.key_id[:16]}…"
            )
        if type(sig["signature"]) is not bytes:
            raise MalformedInput("the signature must be bytes")
        verify_signature(key.public_key, sig["signature"], entries[bf.MANIFEST], "manifest")
    except VerificationError as e:
        report.bad("manifest signature", str(e))
        return
    report.good("manifest signature", f"Ed25519 by key {key.key_id[:16]}…")


def _check_files(entries: dict[str, bytes], manifest: _Manifest, report: BundleReport) -> None:
    for name, (size, digest) in sorted(manifest.files.items()):
        data = entries.get(name)
        if data is None:
            report.bad(f"file {name}", "listed in the manifest but missing")
        elif len(data) != size:
            report.bad(f"file {name}", f"is {len(data)} bytes, the manifest says {size}")
        elif (got := hashlib.sha256(data).digest()) != digest:
            report.bad(
                f"file {name}", f"SHA-256 is {short(got)}, the manifest says {short(digest)}"
            )
        else:
            report.good(f"file {name}", f"{size} bytes, SHA-256 {short(digest)}")
    for name in sorted(set(entries) - set(manifest.files) - set(bf.UNSIGNED)):
        report.bad(f"file {name}", "is in the bundle but not in the signed manifest")


# --- (3) events --------------------------------------------------------------------------------


def _start_events(
    data: bytes | None, manifest: _Manifest, workers: int, progress: Progress | None
) -> tuple[Iterator[Outcome], str | None] | None:
    if data is None:
        return None
    framed, broken = frames(data)
    return check_records(data, framed, manifest.withheld, workers, progress), broken


def _check_events(
    started: tuple[Iterator[Outcome], str | None] | None,
    manifest: _Manifest,
    report: BundleReport,
) -> dict[int, Checked]:
    """Each record checked on its own; returns those that passed, by position."""
    found: dict[int, Checked] = {}
    if started is None:
        report.bad("events", f"the bundle has no {bf.EVENTS}")
        return found
    outcomes, broken = started
    last, count = -1, 0
    for outcome in outcomes:
        count += 1
        checked = outcome.checked
        if checked is not None and checked.position <= last:
            report.bad(
                outcome.item,
                f"listed after position {last}: records must be in ascending position",
            )
            continue
        if checked is None:
            report.bad(outcome.item, outcome.text)
            continue
        last = checked.position
        found[checked.position] = checked
        for problem in outcome.problems:
            report.bad(outcome.item, problem)
        if not outcome.problems:
            report.good(outcome.item, outcome.text)
    if broken is not None:
        report.bad("events", f"{broken}; the records after it cannot be read")
    elif count != manifest.raw["events"]:
        report.bad(
            "events",
            f"{bf.EVENTS} holds {count} records, the manifest says {manifest.raw['events']}",
        )
    for position in sorted(set(manifest.withheld) - set(found)):
        report.bad(f"event {position}", "withheld as privileged in the manifest, not in the bundle")
    return found


# --- (4) proofs -------------------------------------------------------------------------------


def _parse_proofs(data: bytes | None, report: BundleReport) -> dict[str, Any] | None:
    try:
        proofs = decode_fixed_map(data or b"", PROOF_KEYS, "proofs")
        _int(proofs["heads_size"], "heads_size")
        _list(proofs["inclusion"], "inclusion")
        _list(proofs["heads"], "heads")
        _list(proofs["absent"], "absent")
    except VerificationError as e:
        report.bad("proofs", f"{bf.PROOFS}: {e}")
        return None
    return proofs


def _check_inclusion(
    records: dict[int, Checked],
    proofs: dict[str, Any],
    checkpoint: UnverifiedCheckpoint,
    report: BundleReport,
) -> None:
    if not records:
        report.bad("inclusion", "no event to prove")
        return
    known = {p: checked.leaf_hash for p, checked in records.items()}
    try:
        root = bf.root_from_batch(checkpoint.size, known, proofs["inclusion"])
        if root != checkpoint.root:
            raise ProofInvalid(
                f"the events and the batch proof give root {short(root)}, "
                f"the checkpoint's is {short(checkpoint.root)}"
            )
    except VerificationError as e:
        report.bad("inclusion", str(e))
        return
    report.good("inclusion", f"{len(known)} events in the log of size {checkpoint.size}")


def _check_completeness(
    records: dict[int, Checked],
    proofs: dict[str, Any],
    manifest: _Manifest,
    checkpoint: UnverifiedCheckpoint,
    report: BundleReport,
) -> None:
    heads: dict[str, dict[str, Any]] = {}
    for entry in proofs["heads"]:
        try:
            head = _fixed(entry, HEAD_KEYS, "heads entry")
            if type(head["subject"]) is not str:
                raise MalformedInput("a head's subject is text")
        except VerificationError as e:
            report.bad("completeness", str(e))
            continue
        if head["subject"] in heads:
            report.bad("completeness", f"two heads for {head['subject']}")
        heads[head["subject"]] = head
    if list(heads) != manifest.subjects:
        report.bad("completeness", "the heads are not one per subject, in the manifest's order")
    on_chain: dict[str, list[int]] = {}
    for position, checked in records.items():
        for subject, _, _ in checked.links:
            on_chain.setdefault(subject, []).append(position)
    for subject in manifest.subjects:
        item = f"completeness {subject}"
        try:
            head = heads.get(subject)
            if head is None:
                raise MalformedInput("the bundle has no head for it")
            walked = _walk(subject, head, records, proofs, checkpoint)
            extra = set(on_chain.get(subject, ())) - set(walked)
            if extra:
                raise ChainBroken(f"positions {sorted(extra)} are not on its chain")
        except VerificationError as e:
            report.bad(item, str(e))
            continue
        report.good(item, f"all {len(walked)} events, up to position {head['position']}")


def _walk(
    subject: str,
    head: dict[str, Any],
    records: dict[int, Checked],
    proofs: dict[str, Any],
    checkpoint: UnverifiedCheckpoint,
) -> list[int]:
    """The subject's positions from its signed head back to its first event (LEDGER_FORMAT §7)."""
    seq, position = _signed_head(subject, head, proofs, checkpoint)
    walked: list[int] = []
    at: int | None = position
    while at is not None:
        found = records.get(at)
        if found is None:
            raise ChainBroken(f"event #{seq} at position {at} is missing from the bundle")
        link = next((lk for lk in found.links if lk[0] == subject), None)
        if link is None or link[1] != seq:
            raise ChainBroken(f"the event at position {at} carries {link}, expected #{seq}")
        walked.append(at)
        prev = link[2]
        if prev is not None and prev >= at:
            raise ChainBroken(f"the event at position {at} links forward to {prev}")
        if (prev is None) != (seq == 1):
            raise ChainBroken(f"the chain ends at #{seq}, expected #1")
        at, seq = prev, seq - 1
    walked.reverse()
    return walked


def _signed_head(
    subject: str, head: dict[str, Any], proofs: dict[str, Any], checkpoint: UnverifiedCheckpoint
) -> tuple[int, int]:
    """(seq, position) of a head proven to be in the checkpoint's subject-heads tree."""
    seq, position = _int(head["seq"], "head seq"), _int(head["position"], "head position")
    try:
        verify_inclusion(
            _int(head["index"], "head index"),
            proofs["heads_size"],
            leaf_hash(head_bytes(subject, seq, position)),
            _list(head["proof"], "head proof"),
            checkpoint.subjects_root,
        )
    except ProofInvalid as e:
        raise ProofInvalid(f"head [{seq}, {position}] is not in the signed heads: {e}") from None
    return seq, position


def _check_absences(
    proofs: dict[str, Any],
    manifest: _Manifest,
    checkpoint: UnverifiedCheckpoint,
    report: BundleReport,
) -> None:
    """Each absent subject sorts strictly between two adjacent signed heads (§7.1)."""
    given = {}
    for entry in _list(proofs["absent"], "absent proofs"):
        if type(entry) is dict and type(entry.get("subject")) is str:
            if entry["subject"] in given:
                report.bad(f"absence {entry['subject']}", "two absence proofs for it")
            given[entry["subject"]] = entry
    if list(given) != manifest.absent:
        report.bad("absence", "the absence proofs are not one per absent subject, in order")
    size = proofs["heads_size"]
    for subject in manifest.absent:
        item = f"absence {subject}"
        try:
            entry = _fixed(given.get(subject), ABSENCE_KEYS, "absence proof")
            lower, upper = entry["lower"], entry["upper"]
            below = None if lower is None else _absence_side(lower, proofs, checkpoint)
            above = None if upper is None else _absence_side(upper, proofs, checkpoint)
            key = subject.encode()
            if below is not None and not below[1] < key:
                raise ProofInvalid("the lower head does not sort before it")
            if above is not None and not key < above[1]:
                raise ProofInvalid("the upper head does not sort after it")
            if (below[0] if below else -1) + 1 != (above[0] if above else size):
                raise ProofInvalid("the two heads are not neighbours in the signed heads")
        except VerificationError as e:
            report.bad(item, str(e))
            continue
        report.good(item, f"no event at checkpoint size {checkpoint.size}")


def _absence_side(
    head: Any, proofs: dict[str, Any], checkpoint: UnverifiedCheckpoint
) -> tuple[int, bytes]:
    found = _fixed(head, HEAD_KEYS, "absence head")
    if type(found["subject"]) is not str:
        raise MalformedInput("a head's subject is text")
    _signed_head(found["subject"], found, proofs, checkpoint)
    return found["index"], found["subject"].encode()


def _check_consistency(
    entries: dict[str, bytes],
    proofs: dict[str, Any],
    manifest: _Manifest,
    checkpoint: UnverifiedCheckpoint,
    history: list[KeyStatement] | None,
    report: BundleReport,
) -> None:
    if manifest.since_size is None:
        if bf.SINCE in entries or proofs["consistency"] is not None:
            report.bad("consistency", "a consistency proof without an earlier checkpoint named")
        return
    since = _check_checkpoint(entries.get(bf.SINCE), bf.SINCE, history, report)
    if since is None:
        return
    try:
        if since.size != manifest.since_size:
            raise VerificationError(f"{bf.SINCE} has size {since.size}, the manifest names another")
        if since.origin != checkpoint.origin:
            raise VerificationError("the earlier checkpoint is of another log")
        verify_consistency(
            since.size,
            checkpoint.size,
            since.root,
            checkpoint.root,
            _list(proofs["consistency"], "consistency"),
        )
    except VerificationError as e:
        report.bad("consistency", str(e))
        return
    report.good("consistency", f"the log of size {since.size} grew into size {checkpoint.size}")


# --- (5) scope, from the hold events (§2) ------------------------------------------------------


def _evidence_payloads(
    entries: dict[str, bytes], records: dict[int, Checked]
) -> dict[int, dict[str, Any]]:
    """The decoded payloads of the produced events the scope and natives checks read: hold
    events, Disposed events, documents and emails. A few, so decoded here, not in the workers."""
    wanted = sc.HOLD_TYPES | {sc.DISPOSED, *NATIVE_FIELDS}
    data = entries.get(bf.EVENTS, b"")
    found = {}
    for position, checked in records.items():
        if checked.status == bf.PRODUCED and checked.type in wanted:
            try:
                payload = decode(_record_at(data, checked.offset).payload or b"")
            except VerificationError:
                payload = None
            found[position] = payload if type(payload) is dict else {}
    return found


def _check_scope(
    records: dict[int, Checked],
    payloads: dict[int, dict[str, Any]],
    manifest: _Manifest,
    report: BundleReport,
) -> None:
    """Derive the holds from their events alone, hold the manifest to them, then check every
    record's place and status against the derived scope (§2, §5.1)."""
    ok_before = len(report.failures)
    hold_events = []
    for position, checked in sorted(records.items()):
        if checked.type.startswith(sc.HOLD_PREFIX):
            if checked.status != bf.PRODUCED:
                report.bad(
                    f"event {position}",
                    f"{checked.type} is {checked.status}: every "
                    "hold event is produced, so that the scope can be derived from it",
                )
                continue
            hold_events.append(
                sc.HoldEvent(
                    position,
                    checked.stream,
                    checked.version,
                    checked.type,
                    payloads.get(position, {}),
                )
            )
    matter = manifest.raw["matter"]
    matter_id = matter.get("id") if type(matter) is dict else None
    try:
        holds = sc.derive_holds(hold_events, str(matter_id))
    except sc.ScopeError as e:
        report.bad(e.item, e.text)
        report.bad("scope", "the hold events give no scope: no record's status can be checked")
        return
    if not holds:
        report.bad("scope", f"no Hold.Placed event of matter {matter_id} is in the bundle")
        return
    _check_manifest_holds(holds, manifest, report)
    subjects = _check_subjects(holds, manifest, report)
    _check_statuses(records, payloads, holds, subjects, report)
    if len(report.failures) == ok_before:
        changes = sum(len(h.history) for h in holds)
        report.good(
            "scope",
            f"{len(holds)} hold(s) from {changes} hold events; every event's status follows",
        )


def _check_manifest_holds(holds: list[sc.Hold], manifest: _Manifest, report: BundleReport) -> None:
    stated = manifest.raw["holds"]
    by_id = {h["id"]: h for h in stated if type(h) is dict and type(h.get("id")) is str}
    for hold in holds:
        item = f"hold {hold.id}"
        said = by_id.pop(hold.id, None)
        if said is None:
            report.bad(item, "its hold events are in the bundle; the manifest does not list it")
        elif encode(said) != encode(hold.as_manifest()):  # bytes: true is not 1
            report.bad(
                item,
                f"the manifest states {_hold_text(said)}; its hold events at positions "
                f"{[p for p, _, _ in hold.history]} give {_hold_text(hold.as_manifest())}",
            )
        else:
            placed = hold.history[0][2]
            report.good(item, f"{_hold_text(said)}, placed {placed}, {len(hold.history)} event(s)")
    for hold_id in by_id:
        report.bad(f"hold {hold_id}", "in the manifest; no hold event of it is in the bundle")
    ids = [h.get("id") if type(h) is dict else None for h in stated]
    if any(type(i) is not str for i in ids):
        report.bad("holds", "each of the manifest's holds is a map with a text id")
    listed = [i for i in ids if type(i) is str]
    if listed != [h.id for h in holds if h.id in set(listed)]:
        report.bad("holds", "the manifest's holds are not in the order they were placed, each once")


def _hold_text(hold: dict[str, Any]) -> str:
    """A hold as a short phrase; whatever the manifest holds, this only describes it."""
    scope = hold.get("scope") if type(hold.get("scope")) is dict else {}

    def many(name: str) -> int:
        value = scope.get(name)
        return len(value) if type(value) is list else 0

    state = "active" if hold.get("active") is True else "released"
    parts = [f"{many('patients')} patient(s)", f"{many('custodians')} custodian(s)"]
    if scope.get("all_patients") is True:
        parts.append("all patients")
    for name in ("start", "end"):
        if type(scope.get(name)) is str:
            parts.append(f"{name} {scope[name]}")
    if many("categories"):
        parts.append("categories " + ",".join(map(str, scope["categories"])))
    return f"{state}, " + ", ".join(parts)


def _check_subjects(holds: list[sc.Hold], manifest: _Manifest, report: BundleReport) -> set[str]:
    """The subjects the derived holds name must be exactly those with a completeness or absence
    proof (with a practice-wide hold, other patients may be there too)."""
    named = sc.named_subjects(holds)
    proven = set(manifest.subjects) | set(manifest.absent)
    practice_wide = any(h.scope.all_patients for h in holds)
    for subject in sorted(named - proven):
        report.bad(f"subject {subject}", "named by a hold, with no completeness or absence proof")
    for subject in sorted(proven - named):
        if not (practice_wide and subject.startswith(sc.PATIENT)):
            report.bad(f"subject {subject}", "in the manifest, but no hold's scope names it")
    return named | (proven if practice_wide else set())


def _check_statuses(
    records: dict[int, Checked],
    payloads: dict[int, dict[str, Any]],
    holds: list[sc.Hold],
    subjects: set[str],
    report: BundleReport,
) -> None:
    """§10 rules 28-30 (26 and 27 are checked with each record, in bundle_events)."""
    disposals = _disposals(records, payloads, subjects)
    destroyed = {key: d for d, (_, keys) in sorted(disposals.items()) for key in keys}
    produced_under: dict[str, int] = {}
    for position, checked in records.items():
        if checked.status == bf.PRODUCED:
            produced_under.setdefault(checked.key, position)
    practice_wide = any(h.scope.all_patients for h in holds)
    hold_ids = {h.id for h in holds}
    # Whether a record concerns a subject of the production, and which holds' subject rules
    # (§2.4 rules 1-2) cover it, depend on its subjects only: worked out once per subject list.
    by_subjects: dict[tuple[str, ...], tuple[bool, list[sc.Hold]]] = {}
    for position, checked in sorted(records.items()):
        mine = checked.subjects
        known = by_subjects.get(mine)
        if known is None:
            concerned = any(
                s in subjects or (practice_wide and s.startswith(sc.PATIENT)) for s in mine
            )
            known = (concerned, [h for h in holds if sc.covers_subjects(h.scope, mine)])
            by_subjects[mine] = known
        concerned, candidates = known
        status = checked.status
        if status == bf.PRODUCED and checked.type in sc.SECRET_EVENT_TYPES:
            continue  # reported with the record
        is_hold = checked.type.startswith(sc.HOLD_PREFIX)
        evidence = (is_hold and checked.stream in hold_ids) or position in disposals
        item = f"event {position}"
        if not concerned and not evidence:
            report.bad(
                item,
                f"{status}, but it is on the chain of no subject in scope "
                f"({', '.join(mine) or 'no subjects'})",
            )
            continue
        if status == bf.PRODUCED and checked.key in destroyed:
            report.bad(
                item,
                f"produced under data key {checked.key}, which the Disposed event at position "
                f"{destroyed[checked.key]} destroyed",
            )
        if evidence or is_hold or status == bf.PRIVILEGED:
            continue  # hold and Disposed events are produced; a claim is the producer's call
        covering = next(
            (h for h in candidates if sc.covers_rest(h.scope, checked.recorded, checked.type)),
            None,
        )
        if status == bf.DISPOSED:
            # Scope before disposal: only what the matter reaches is disposed, and proven so.
            if covering is None:
                report.bad(item, "disposed, but no hold's scope covers it: it is out-of-scope")
            _check_disposed(item, position, checked, disposals, produced_under, report)
            continue
        if status == bf.PRODUCED and covering is None:
            report.bad(
                item,
                f"produced, but no hold's scope covers it ({checked.type}, "
                f"recorded {checked.recorded[:10]})",
            )
        elif status == bf.OUT_OF_SCOPE and covering is not None:
            want = "privileged" if checked.type in sc.SECRET_EVENT_TYPES else "produced"
            report.bad(item, f"out-of-scope, but hold {covering.id} covers it: it must be {want}")


def _disposals(
    records: dict[int, Checked], payloads: dict[int, dict[str, Any]], subjects: set[str]
) -> dict[int, tuple[str, set[str]]]:
    """position → (patient subject, destroyed key names) of each produced Disposed event about
    a subject in scope: evidence for the records the bundle says are disposed."""
    found = {}
    for position, payload in payloads.items():
        if records[position].type != sc.DISPOSED:
            continue
        patient = sc.untag(payload.get("patient_id"))
        keys = sc.untag(payload.get("key_names"))
        if type(patient) is not str or type(keys) is not list:
            continue
        subject = sc.PATIENT + patient
        if subject in subjects:
            found[position] = (subject, {k for k in keys if type(k) is str})
    return found


def _check_disposed(
    item: str,
    position: int,
    checked: Checked,
    disposals: dict[int, tuple[str, set[str]]],
    produced_under: dict[str, int],
    report: BundleReport,
) -> None:
    owner = sc.key_owner(checked.key)
    backing = [
        d
        for d, (subject, keys) in disposals.items()
        if subject == owner and checked.key in keys and d > position
    ]
    if not backing:
        report.bad(
            item,
            f"disposed, but no produced Disposed event of {owner} after it "
            f"names its data key {checked.key}",
        )
    readable = produced_under.get(checked.key)
    if readable is not None:
        report.bad(
            item,
            f"disposed, but the event at position {readable} under the same data "
            f"key {checked.key} is produced",
        )


# --- (6) the privilege log ---------------------------------------------------------------------


def _check_privilege_log(
    entries: dict[str, bytes],
    records: dict[int, Checked],
    manifest: _Manifest,
    report: BundleReport,
) -> None:
    item = f"privilege log {PRIVILEGE_LOG}"
    data = entries.get(PRIVILEGE_LOG)
    if data is None:
        report.bad(item, "missing from the bundle")
        return
    try:
        rows = privilege_rows(data)
    except VerificationError as e:
        report.bad(item, str(e))
        return
    bad = len(report.failures)
    seen: set[int] = set()
    for row in rows:
        claim = manifest.withheld.get(row.position)
        if row.position in seen:
            report.bad(item, f"lists position {row.position} twice")
        elif claim is None:
            report.bad(item, f"lists position {row.position}, which is not withheld")
        elif row.claim != cell(claim):
            report.bad(
                item, f"position {row.position}: claim {row.claim!r}, the manifest's is {claim!r}"
            )
        elif row.position in records and row.commitment != records[row.position].commitment.hex():
            report.bad(item, f"position {row.position}: the commitment is not the event's")
        seen.add(row.position)
    for position in sorted(set(manifest.withheld) - seen):
        report.bad(f"event {position}", "withheld with a claim, but not in the privilege log")
    if [r.position for r in rows] != sorted(seen):
        report.bad(item, "its rows are not in ascending ledger position")
    if len(report.failures) == bad:
        report.good(item, f"one row for each of the {len(rows)} withheld events")


# --- (7) natives ------------------------------------------------------------------------------


def _check_natives(
    entries: dict[str, bytes],
    records: dict[int, Checked],
    payloads: dict[int, dict[str, Any]],
    manifest: _Manifest,
    report: BundleReport,
) -> None:
    """One native per produced document or email, at the path §9 gives, equal to the committed
    field; and nothing else under natives/."""
    listed: dict[int, str] = {}
    for path, position, name in manifest.natives:
        item = f"native {path}"
        found = records.get(position)
        data = entries.get(path)
        if position in listed:
            report.bad(item, f"a second native for the event at position {position}")
            continue
        listed[position] = path
        if data is None:
            report.bad(item, "missing from the bundle")
        elif found is None or found.status != bf.PRODUCED:
            report.bad(item, f"its event at position {position} is not produced in the bundle")
        elif found.type not in NATIVE_FIELDS:
            report.bad(item, f"the event at position {position} is a {found.type}, no native")
        elif name != NATIVE_FIELDS[found.type]:
            report.bad(
                item,
                f"names field {name!r}; a {found.type} gives its {NATIVE_FIELDS[found.type]!r}",
            )
        elif path != (want := native_path(position, found.type, payloads[position])):
            report.bad(item, f"the native of the event at position {position} must be at {want}")
        elif payloads[position].get(name) != data:
            report.bad(item, f"differs from field {name!r} of the event at {position}")
        else:
            report.good(item, f"{len(data)} bytes, the committed {name!r} of event {position}")
    for position, checked in sorted(records.items()):
        produced = checked.status == bf.PRODUCED and checked.type in NATIVE_FIELDS
        if produced and position not in listed:
            report.bad(f"event {position}", f"a produced {checked.type} without its native")
    natives = set(listed.values())
    for name in sorted(entries):
        if name.startswith(bf.NATIVES_DIR) and name not in natives:
            report.bad(f"file {name}", "under natives/ but the native of no produced event")


def _record_at(data: bytes, offset: int) -> bf.EventRecord:
    (length,) = bf.FRAME.unpack_from(data, offset)
    start = offset + bf.FRAME.size
    return bf.parse_record(data[start : start + length])


# --- small parsers ----------------------------------------------------------------------------


def _entry(entries: dict[str, bytes], name: str) -> bytes:
    data = entries.get(name)
    if data is None:
        raise MalformedInput(f"the bundle has no {name}")
    return data


def _fixed(value: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if type(value) is not dict or tuple(value) != keys:
        raise MalformedInput(f"{what} must have exactly the keys {', '.join(keys)}")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if type(value) is not list:
        raise MalformedInput(f"{what} must be an array")
    return value


def _int(value: Any, what: str) -> int:
    if type(value) is not int or value < 0:
        raise MalformedInput(f"{what} must be a non-negative integer")
    return value


def _ascending(values: list[Any], key: Any, what: str, name: str) -> None:
    at = strictly_ascending(values, key)
    if at is not None:
        raise MalformedInput(
            f"{what}: {name} {values[at]!r} is not after {values[at - 1]!r} (ascending, each once)"
        )


def _hash(value: Any, what: str) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise MalformedInput(f"{what} must be 32 bytes")
    return value
