"""Check an e-discovery bundle against docs/BUNDLE_FORMAT.md, trusting only its bytes, hashes
and signatures.

Every check gives one line: ``OK <item>: ...`` or ``FAIL <item>: ...``, where the item is the
manifest, the key history, a checkpoint, a file, an event (by position), a native, the inclusion
proof, a subject's completeness or the consistency proof. A damaged part fails its own items and
whatever depends on it; the rest are still checked. Nothing here raises for bad input: a bundle
that cannot be read at all is one FAIL line.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from verify import bundle_format as bf
from verify.bundle_events import Checked, Outcome, check_records, frames
from verify.canonical import decode, decode_fixed_map, key_order
from verify.checkpoint import UnverifiedCheckpoint, parse_note, verify_checkpoint
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
    path: str | Path, trusted_key: str | None = None, workers: int = 1
) -> BundleReport:
    """Check the bundle at ``path``; the report's ``ok`` says whether every item passed."""
    return check_bundle(Path(path), trusted_key, workers=workers)


def check_bundle(
    path: Path,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
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
    _check_natives(entries, records, manifest, report)
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
            files[item["path"]] = (item["size"], _hash(item["sha256"], "files sha256"))
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
        named = _named_in_scope(m["holds"])
        unproven = sorted(named - set(subjects) - set(absent))
        if unproven:
            raise MalformedInput(f"the holds name {unproven[0]}, which has no completeness proof")
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
    last = -1
    for outcome in outcomes:
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
        report.good(outcome.item, outcome.text)
    if broken is not None:
        report.bad("events", f"{broken}; the records after it cannot be read")
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
        heads[head["subject"]] = head
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
            given[entry["subject"]] = entry
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


# --- (5) natives ------------------------------------------------------------------------------


def _check_natives(
    entries: dict[str, bytes],
    records: dict[int, Checked],
    manifest: _Manifest,
    report: BundleReport,
) -> None:
    for path, position, name in manifest.natives:
        item = f"native {path}"
        found = records.get(position)
        data = entries.get(path)
        if data is None:
            report.bad(item, "missing from the bundle")
        elif found is None or found.status != bf.PRODUCED:
            report.bad(item, f"its event at position {position} is not produced in the bundle")
        else:
            payload = decode(_record_at(entries[bf.EVENTS], found.offset).payload)
            if payload.get(name) != data:
                report.bad(item, f"differs from field {name!r} of the event at {position}")
            else:
                report.good(item, f"{len(data)} bytes, the committed {name!r} of event {position}")


def _named_in_scope(holds: Any) -> set[str]:
    """The patients and custodians the holds name: each needs a completeness proof."""
    named = set()
    for hold in _list(holds, "holds"):
        scope = hold.get("scope") if type(hold) is dict else None
        if type(scope) is not dict:
            raise MalformedInput("each hold needs a scope")
        for kind, field_name in (("patient", "patients"), ("user", "custodians")):
            for identifier in _list(scope.get(field_name), f"scope {field_name}"):
                named.add(f"{kind}:{identifier}")
    return named


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


def _hash(value: Any, what: str) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise MalformedInput(f"{what} must be 32 bytes")
    return value
