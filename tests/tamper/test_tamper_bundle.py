"""Tampering with a produced bundle as whoever holds the file would: bytes flipped in place,
entries of the archive rewritten, removed or swapped, a checkpoint re-signed or taken from
another practice's log. Each is caught with a FAIL line naming the item, never a traceback."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from domain.base import patient_subject, user_subject
from domain.categories import RECORD_CATEGORIES
from domain.credentials import SECRET_EVENT_TYPES, Account
from domain.practice import Practice
from events.config import StoreConfig
from events.keys import SigningKey
from events.ledger import Ledger, create_practice_files, record_genesis_key
from events.log import iter_leaves
from events.sealing import unseal
from legal_hold import holds as lh
from legal_hold.holds import CATEGORIES, Scope
from legal_hold.production import produce
from legal_hold.production_gather import _rows as gather_rows
from legal_hold.production_scope import CREDENTIAL_CLAIM
from legal_hold.review import privilege_log
from projections.runner import KeyRing
from tests.integration.test_ledger_store import QUIET
from tests.integration.test_production import T0, Matter, a_matter, positions_of
from tests.support import init_practice
from verify import bundle_format as bf
from verify import bundle_scope
from verify.__main__ import main as verify_main
from verify.bundle import verify_bundle
from verify.bundle_privilege import PRIVILEGE_LOG
from verify.canonical import decode, encode
from verify.keyhistory import key_for_size
from verify.merkle import leaf_hash
from verify.records import Header, parse_header, split_record


@dataclass
class Produced:
    path: Path
    patients: tuple[UUID, UUID]
    privileged: int


@pytest.fixture
def bundle(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Produced]:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        m = a_matter(ledger)
        out = tmp_path / "bundle.zip"
        produce(ledger, m.matter_id, out, by=m.risk, withhold={m.privileged_position: "work"})
    finally:
        ledger.close()
    assert verify_bundle(out).ok
    yield Produced(out, m.patients, m.privileged_position)


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def entries_as_read(path: Path) -> dict[str, bytes]:
    """Every entry's bytes as the verifier reads them: CRC-32s ignored (the manifest's SHA-256s
    are what count, docs/BUNDLE_FORMAT.md §1)."""
    found = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            del info.CRC
            with archive.open(info) as handle:
                found[info.filename] = handle.read()
    return found


def rewrite(path: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """Rebuild the archive with some entries changed (valid CRCs: only the content lies)."""
    found = entries(path)
    change(found)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in found.items():
            archive.writestr(name, data)


def flip_inside(path: Path, needle: bytes, at: int = 0) -> None:
    """Flip one bit of the bundle file itself, ``at`` bytes into the first copy of ``needle``."""
    raw = bytearray(path.read_bytes())
    offset = raw.find(needle)
    assert offset >= 0 and raw.find(needle, offset + 1) < 0, "needle must be unique"
    raw[offset + at] ^= 0x01
    path.write_bytes(bytes(raw))


def flip_in_entry(path: Path, name: str, needle: bytes, at: int = 0) -> None:
    """Flip one bit of the bundle file where the entry ``name`` holds ``needle``."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        data = archive.read(name)
    raw = bytearray(path.read_bytes())
    header = info.header_offset
    name_length, extra_length = struct.unpack_from("<HH", raw, header + 26)
    start = header + 30 + name_length + extra_length + data.index(needle)
    raw[start + at] ^= 0x01
    path.write_bytes(bytes(raw))


def failures(path: Path) -> list[str]:
    report = verify_bundle(path)
    assert not report.ok
    return [str(line) for line in report.failures]


def records(path: Path) -> list[tuple[bytes, bf.EventRecord]]:
    data = entries(path)[bf.EVENTS]
    return [(raw, bf.parse_record(raw)) for _, raw in bf.iter_frames(data)]


def test_a_flipped_byte_in_an_event_fails_that_event(bundle: Produced) -> None:
    record = next(rec for _, rec in records(bundle.path) if rec.status == bf.PRODUCED)
    assert record.payload is not None
    flip_in_entry(bundle.path, bf.EVENTS, record.payload, at=len(record.payload) // 2)

    lines = failures(bundle.path)
    assert f"FAIL file {bf.EVENTS}: SHA-256 is" in "\n".join(lines)
    assert any(
        line.startswith(f"FAIL event {record.position}: payload and salt hash to") for line in lines
    ), lines


def test_a_flipped_byte_in_a_native_fails_that_native(bundle: Produced) -> None:
    natives = {n: d for n, d in entries(bundle.path).items() if n.startswith("natives/")}
    name = next(n for n in natives if n.endswith(".pdf"))
    flip_in_entry(bundle.path, name, natives[name], at=3)

    lines = failures(bundle.path)
    assert any(
        line.startswith(f"FAIL native {name}: differs from field 'content'") for line in lines
    )
    assert any(line.startswith(f"FAIL file {name}: SHA-256 is") for line in lines)


def test_a_flipped_byte_in_the_inclusion_proof_fails_the_inclusion(bundle: Produced) -> None:
    node = decode(entries(bundle.path)[bf.PROOFS])["inclusion"][0]
    flip_inside(bundle.path, node, at=7)

    lines = failures(bundle.path)
    assert any(
        line.startswith("FAIL inclusion: the events and the batch proof give") for line in lines
    )
    assert any(line.startswith(f"FAIL file {bf.PROOFS}: SHA-256") for line in lines)


def test_a_flipped_byte_in_a_head_proof_fails_that_subjects_completeness(bundle: Produced) -> None:
    heads = decode(entries(bundle.path)[bf.PROOFS])["heads"]
    head = next(h for h in heads if h["proof"])
    flip_inside(bundle.path, head["proof"][0], at=0)

    lines = failures(bundle.path)
    assert any(line.startswith(f"FAIL completeness {head['subject']}: head [") for line in lines), (
        lines
    )


def test_a_flipped_byte_in_the_manifest_fails_its_signature(bundle: Produced) -> None:
    flip_in_entry(bundle.path, bf.MANIFEST, b"CV-2026-1", at=3)  # the matter number

    lines = failures(bundle.path)
    assert any(
        line.startswith("FAIL manifest signature: manifest: signature is invalid") for line in lines
    ), lines


def test_one_event_of_a_patient_removed_fails_that_patients_completeness(
    bundle: Produced,
) -> None:
    subject = patient_subject(bundle.patients[0])
    found = records(bundle.path)
    mine = [rec.position for _, rec in found if subject in decode_subjects(rec)]
    victim = mine[1]

    def drop(files: dict[str, bytes]) -> None:
        files[bf.EVENTS] = b"".join(bf.frame(raw) for raw, rec in found if rec.position != victim)

    rewrite(bundle.path, drop)
    lines = failures(bundle.path)
    assert any(
        line.startswith(f"FAIL completeness {subject}: event #2 at position {victim} is missing")
        for line in lines
    ), lines


def decode_subjects(record: bf.EventRecord) -> list[str]:
    return [link[0] for link in decode(record.leaf)["links"]]


def test_two_events_swapped_fail_by_position(bundle: Produced) -> None:
    found = records(bundle.path)
    order = [raw for raw, _ in found]
    order[2], order[3] = order[3], order[2]
    first, second = found[2][1].position, found[3][1].position

    rewrite(bundle.path, lambda files: files.__setitem__(bf.EVENTS, b"".join(map(bf.frame, order))))
    lines = failures(bundle.path)
    assert any(
        line.startswith(f"FAIL event {first}: listed after position {second}") for line in lines
    ), lines


def test_two_events_moved_to_each_others_positions_fail_inclusion_and_completeness(
    bundle: Produced,
) -> None:
    subject = patient_subject(bundle.patients[0])
    found = records(bundle.path)
    mine = [i for i, (_, rec) in enumerate(found) if subject in decode_subjects(rec)]
    a, b = found[mine[0]][1], found[mine[1]][1]
    moved = {mine[0]: b._replace(position=a.position), mine[1]: a._replace(position=b.position)}
    order = [bf.encode_record(moved[i]) if i in moved else raw for i, (raw, _) in enumerate(found)]

    rewrite(bundle.path, lambda files: files.__setitem__(bf.EVENTS, b"".join(map(bf.frame, order))))
    lines = failures(bundle.path)
    assert any(line.startswith("FAIL inclusion:") for line in lines), lines
    assert any(line.startswith(f"FAIL completeness {subject}:") for line in lines), lines


def test_a_replaced_checkpoint_signature_fails_the_checkpoint(bundle: Produced) -> None:
    note = entries(bundle.path)[bf.CHECKPOINT]
    body, _, signature_line = note.partition(b"\n\n")
    prefix, _, blob = signature_line.rstrip(b"\n").rpartition(b" ")
    key_hash = base64.b64decode(blob)[:4]
    forged = SigningKey.generate().sign(body + b"\n")
    replaced = body + b"\n\n" + prefix + b" " + base64.b64encode(key_hash + forged) + b"\n"

    rewrite(bundle.path, lambda files: files.__setitem__(bf.CHECKPOINT, replaced))
    lines = failures(bundle.path)
    assert any(
        line.startswith("FAIL checkpoint.note: checkpoint at size")
        and "signature is invalid" in line
        for line in lines
    ), lines


def test_a_checkpoint_from_a_different_log_fails_the_checkpoint(
    bundle: Produced, tmp_path: Path
) -> None:
    other = StoreConfig(home=tmp_path / "other-practice")
    practice, key = create_practice_files(other, "Other Practice")
    ledger = Ledger(other, **QUIET)
    try:
        record_genesis_key(ledger, key)
        ledger.save(Practice(practice_id=UUID(practice["practice_id"]), name="Other Practice"))
        foreign = ledger.checkpointer.issue()
        with ledger.db.read() as c:
            c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (foreign.size,))
            row = c.fetchone()
    finally:
        ledger.close()
    assert row is not None

    rewrite(bundle.path, lambda files: files.__setitem__(bf.CHECKPOINT, bytes(row[0])))
    lines = failures(bundle.path)
    assert any(
        line.startswith("FAIL checkpoint.note: origin") and "a checkpoint of another log" in line
        for line in lines
    ), lines


def test_a_privileged_item_turned_produced_without_its_claim_fails(bundle: Produced) -> None:
    def unclaim(files: dict[str, bytes]) -> None:
        found = [bf.parse_record(raw) for _, raw in bf.iter_frames(files[bf.EVENTS])]
        changed = [
            r._replace(status=bf.OUT_OF_SCOPE, claim=None) if r.position == bundle.privileged else r
            for r in found
        ]
        files[bf.EVENTS] = b"".join(bf.frame(bf.encode_record(r)) for r in changed)

    rewrite(bundle.path, unclaim)
    lines = failures(bundle.path)
    assert any(
        line.startswith(f"FAIL event {bundle.privileged}: out-of-scope with claim None")
        for line in lines
    ), lines


def test_a_file_added_to_the_bundle_is_not_in_the_signed_manifest(bundle: Produced) -> None:
    rewrite(bundle.path, lambda files: files.__setitem__("natives/extra.pdf", b"%PDF"))
    assert "FAIL file natives/extra.pdf: is in the bundle but not in the signed manifest" in (
        failures(bundle.path)
    )


def test_a_truncated_bundle_or_a_file_that_is_no_bundle_is_one_fail_line(
    bundle: Produced, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = bundle.path.read_bytes()
    bundle.path.write_bytes(raw[: len(raw) // 2])
    assert verify_main(["bundle", str(bundle.path)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAIL bundle: not a readable Chartledger bundle (ZIP)")
    assert out[-1] == f"FAIL: {bundle.path}: 1 of 1 items failed"
    assert verify_main(["bundle", str(bundle.path.with_name("missing.zip"))]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_pinned_trusted_key_refuses_a_bundle_of_another_practice(bundle: Produced) -> None:
    report = verify_bundle(bundle.path, trusted_key="00" * 32)
    assert any(
        str(line).startswith("FAIL key history: key statement 0: first key is")
        for line in report.failures
    )
    keys = decode(entries(bundle.path)[bf.KEYS])
    genesis = decode(keys[0][0])["key_id"]
    assert verify_bundle(bundle.path, trusted_key=genesis).ok
    assert encode(keys) == entries(bundle.path)[bf.KEYS]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_a_flipped_bit_anywhere_fails_with_lines_never_a_traceback(
    bundle: Produced, data: st.DataObject
) -> None:
    original = bundle.path.read_bytes()
    # Anywhere, or in the central directory at the end, where the archive's structure is.
    anywhere = st.integers(0, len(original) - 1)
    structure = st.integers(max(0, len(original) - 3000), len(original) - 1)
    at = data.draw(st.one_of(anywhere, structure), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    flipped = bytearray(original)
    flipped[at] ^= 1 << bit
    target = bundle.path.with_name("flipped.zip")
    target.write_bytes(bytes(flipped))

    report = verify_bundle(target)

    # Some bytes of a ZIP are not read by anyone (a local header's copy of the time, say): a
    # flip there changes nothing the bundle claims. Everything else must fail, by name.
    if report.ok:
        assert entries_as_read(target) == entries(bundle.path)
    else:
        assert all(line.item and line.text for line in report.failures)


@pytest.mark.parametrize(("field", "offset"), [("flags", 8), ("method", 10)])
def test_a_damaged_directory_entry_fails_as_that_file(
    bundle: Produced, field: str, offset: int
) -> None:
    """The central directory's general-purpose flags (bit 0: encrypted) and compression method
    of events.bin: zipfile refuses to open such an entry, with an error of its own kind."""
    raw = bytearray(bundle.path.read_bytes())
    name = bf.EVENTS.encode()
    entry = raw.rfind(b"PK\x01\x02", 0, raw.rfind(name))  # events.bin's directory entry
    raw[entry + offset] ^= 0x01
    bundle.path.write_bytes(bytes(raw))

    lines = failures(bundle.path)
    assert any(line.startswith(f"FAIL file {bf.EVENTS}: cannot be read") for line in lines), lines


def test_an_absence_proven_by_heads_that_are_not_neighbours_fails(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        m = a_matter(ledger)
        hold = lh.all_holds(ledger, m.matter_id)[0]
        nobody = UUID(int=0)  # sorts before every other patient: its proof has an upper head only
        scope = Scope.of(patients=[*m.patients, nobody], custodians=[m.custodian])
        lh.change_scope(ledger, hold.id, scope=scope, reason="r", at=T0, by=m.risk)
        out = tmp_path / "bundle.zip"
        produce(ledger, m.matter_id, out, by=m.risk)
    finally:
        ledger.close()
    assert verify_bundle(out).ok
    proofs = decode(entries(out)[bf.PROOFS])
    (absence,) = proofs["absent"]
    heads = {h["subject"]: h for h in proofs["heads"]}
    # Claim the next head up as the neighbour: it is in the signed tree, but not adjacent.
    later = next(
        h for s, h in sorted(heads.items()) if s.encode() > absence["upper"]["subject"].encode()
    )
    absence["upper"] = later
    rewrite(out, lambda files: files.__setitem__(bf.PROOFS, encode(proofs)))

    lines = failures(out)
    assert (
        f"FAIL absence patient:{nobody}: the two heads are not neighbours in the signed heads"
        in (lines)
    ), lines


# --- An insider with the practice's signing key (BUNDLE_FORMAT v2) ------------------------------
# The producing party can re-sign whatever it changes: every case below rewrites the bundle,
# recomputes the batch proof from the log and the manifest's file list, and signs the manifest
# again with the practice's own key, as that insider would. The manifest signature and every
# file's SHA-256 then pass; what fails is the rule the change breaks, on a line naming the item.


@dataclass
class Parts:
    """A bundle taken apart: what an insider edits before putting it back together."""

    manifest: dict[str, Any]
    records: list[bf.EventRecord]
    proofs: dict[str, Any]
    files: dict[str, bytes]  # every other entry, by name


@dataclass
class Insider:
    path: Path
    config: StoreConfig
    matter: Matter
    account_position: int  # the custodian's Account.Opened: a password hash, withheld

    def parts(self) -> Parts:
        found = entries(self.path)
        records = [bf.parse_record(raw) for _, raw in bf.iter_frames(found.pop(bf.EVENTS))]
        manifest = decode(found.pop(bf.MANIFEST))
        proofs = decode(found.pop(bf.PROOFS))
        del found[bf.SIGNATURE]
        return Parts(manifest, records, proofs, found)

    def rebuild(self, change: Callable[[Parts], None], *, count: bool = True) -> list[str]:
        """Change the bundle, make every proof and hash agree again, re-sign it; the failures."""
        parts = self.parts()
        change(parts)
        parts.records.sort(key=lambda r: r.position)
        if count:
            parts.manifest["events"] = len(parts.records)
        ledger = Ledger(self.config, **QUIET)
        try:
            size = parts.manifest["checkpoint"]["size"]
            with ledger.db.read() as c:
                hashes = [leaf_hash(leaf) for leaf in iter_leaves(c, 0, size)]
            parts.proofs["inclusion"] = bf.batch_proof(hashes, [r.position for r in parts.records])
            key = key_for_size(ledger.key_history(), size)
            signing_key = ledger.signing_key(key.key_id)
        finally:
            ledger.close()
        files = {
            **parts.files,
            bf.EVENTS: b"".join(bf.frame(bf.encode_record(r)) for r in parts.records),
            bf.PROOFS: encode(parts.proofs),
        }
        parts.manifest["files"] = [
            {"path": name, "size": len(data), "sha256": hashlib.sha256(data).digest()}
            for name, data in sorted(files.items(), key=lambda item: item[0].encode())
        ]
        manifest = encode(parts.manifest)
        signature = encode({"key_id": key.key_id, "signature": signing_key.sign(manifest)})
        with zipfile.ZipFile(self.path, "w", zipfile.ZIP_STORED) as archive:
            archive.writestr(bf.MANIFEST, manifest)
            archive.writestr(bf.SIGNATURE, signature)
            for name, data in files.items():
                archive.writestr(name, data)
        report = verify_bundle(self.path)
        lines = [str(line) for line in report.lines]
        assert any(line.startswith("OK manifest signature:") for line in lines), lines
        assert not any(line.startswith("FAIL file ") and "SHA-256" in line for line in lines)
        return [str(line) for line in report.failures]

    def opened(self, position: int) -> bf.EventRecord:
        """The event at ``position`` with its payload, as the practice (holding its keys) can."""
        ledger = Ledger(self.config, **QUIET)
        try:
            with ledger.db.read() as c:
                ((_, leaf, state),) = gather_rows(c, [position])
            header, sealed = split_record(bytes(state))
            parsed = parse_header(header)
            key = KeyRing(ledger.data_keys).get(parsed.key)
            salt, payload = unseal(key, parsed.stream, parsed.version, sealed)
        finally:
            ledger.close()
        return bf.EventRecord(position, bytes(leaf), header, bf.PRODUCED, salt, payload)


@pytest.fixture
def insider(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Insider]:
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, **QUIET)
    try:
        m = a_matter(ledger)
        account = Account.open(
            username="casey", user_id=m.custodian, password_hash="pbkdf2$1$salt$hash", at=T0
        )
        ledger.save(account)
        account_position = positions_of(ledger, user_subject(m.custodian))[-1]
        out = tmp_path / "bundle.zip"
        produce(ledger, m.matter_id, out, by=m.risk, withhold={m.privileged_position: "work"})
    finally:
        ledger.close()
    report = verify_bundle(out)
    assert report.ok, [str(line) for line in report.failures]
    yield Insider(out, store_config, m, account_position)


def header_of(record: bf.EventRecord) -> Header:
    return parse_header(record.header)


def without_privilege_row(parts: Parts, position: int) -> None:
    table = list(csv.reader(io.StringIO(parts.files[PRIVILEGE_LOG].decode("utf-8-sig"))))
    kept = [row for row in table[1:] if row[table[0].index("Ledger position")] != str(position)]
    parts.files[PRIVILEGE_LOG] = privilege_log.csv_bytes(kept)


def test_insider_produces_a_password_hash(insider: Insider) -> None:
    p = insider.account_position

    def produce_it(parts: Parts) -> None:
        parts.records = [insider.opened(p) if r.position == p else r for r in parts.records]
        parts.manifest["withheld"] = [w for w in parts.manifest["withheld"] if w[0] != p]
        without_privilege_row(parts, p)

    lines = insider.rebuild(produce_it)
    assert (
        f"FAIL event {p}: domain.credentials:Account.Opened holds a login secret and is produced"
        in lines
    ), lines


def test_insider_carries_another_patients_event_as_produced(insider: Insider) -> None:
    other = patient_subject(insider.matter.other_patient)
    ledger = Ledger(insider.config, **QUIET)
    try:
        theirs = positions_of(ledger, other)
    finally:
        ledger.close()
    carried = next(p for p in theirs if p not in {r.position for r in insider.parts().records})

    lines = insider.rebuild(lambda parts: parts.records.append(insider.opened(carried)))
    assert "OK inclusion: " in "\n".join(map(str, verify_bundle(insider.path).lines))
    assert (
        f"FAIL event {carried}: produced, but it is on the chain of no subject in scope ({other})"
        in lines
    ), lines


def test_insider_relabels_a_produced_record_out_of_scope(insider: Insider) -> None:
    first = patient_subject(insider.matter.patients[0])
    victim = next(
        r
        for r in insider.parts().records
        if r.status == bf.PRODUCED
        and header_of(r).subjects == (first,)
        and header_of(r).type.startswith("domain.notes:")
    )

    def hide(parts: Parts) -> None:
        parts.records = [
            r._replace(status=bf.OUT_OF_SCOPE, salt=None, payload=None)
            if r.position == victim.position
            else r
            for r in parts.records
        ]

    lines = insider.rebuild(hide)
    hold = lh_hold_id(insider)
    assert (
        f"FAIL event {victim.position}: out-of-scope, but hold {hold} covers it: "
        "it must be produced" in lines
    ), lines


def test_insider_relabels_a_record_disposed_while_its_key_still_opens_others(
    insider: Insider,
) -> None:
    first = patient_subject(insider.matter.patients[0])
    mine = [
        r
        for r in insider.parts().records
        if r.status == bf.PRODUCED
        and header_of(r).subjects == (first,)
        and header_of(r).type.startswith("domain.notes:")
    ]
    victim, kept = mine[0], mine[-1]
    assert header_of(victim).key == header_of(kept).key

    def dispose_it(parts: Parts) -> None:
        parts.records = [
            r._replace(status=bf.DISPOSED, salt=None, payload=None)
            if r.position == victim.position
            else r
            for r in parts.records
        ]

    lines = insider.rebuild(dispose_it)
    key = header_of(victim).key
    assert (
        f"FAIL event {victim.position}: disposed, but no produced Disposed event of {first} "
        f"after it names its data key {key}" in lines
    ), lines
    assert any(
        line.startswith(f"FAIL event {victim.position}: disposed, but the event at position ")
        and f"under the same data key {key} is produced" in line
        for line in lines
    ), lines


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("../../evil.txt", "has an empty, '.' or '..' segment in its name"),
        ("/etc/cron.d/evil", "is an absolute path"),
    ],
)
def test_insider_lists_and_signs_an_entry_outside_the_bundle(
    insider: Insider, name: str, why: str
) -> None:
    lines = insider.rebuild(lambda parts: parts.files.__setitem__(name, b"* * * * * root sh\n"))
    with zipfile.ZipFile(insider.path) as archive:
        assert name in archive.namelist()  # the name went into the archive as it was
    assert f"FAIL file {name}: {why}" in lines, lines


def test_insider_lists_and_signs_an_extra_native(insider: Insider) -> None:
    name = "natives/extra.pdf"
    lines = insider.rebuild(lambda parts: parts.files.__setitem__(name, b"%PDF-1.4 planted"))
    assert f"FAIL file {name}: under natives/ but the native of no produced event" in lines, lines


def test_insider_moves_a_native(insider: Insider) -> None:
    parts = insider.parts()
    (email,) = [n for n in parts.manifest["natives"] if n["path"].endswith(".eml")]
    moved = "natives/999999.eml"

    def move(parts: Parts) -> None:
        parts.files[moved] = parts.files.pop(email["path"])
        for native in parts.manifest["natives"]:
            if native["path"] == email["path"]:
                native["path"] = moved

    lines = insider.rebuild(move)
    position = email["position"]
    assert (
        f"FAIL native {moved}: the native of the event at position {position} must be at "
        f"{email['path']}" in lines
    ), lines


def test_insider_states_a_wrong_events_count(insider: Insider) -> None:
    def miscount(parts: Parts) -> None:
        parts.manifest["events"] = len(parts.records) + 1

    lines = insider.rebuild(miscount, count=False)
    count = len(insider.parts().records)
    assert f"FAIL events: {bf.EVENTS} holds {count} records, the manifest says {count + 1}" in (
        lines
    ), lines


def lh_hold_id(insider: Insider) -> str:
    (hold,) = insider.parts().manifest["holds"]
    return str(hold["id"])


def test_insider_narrows_a_hold_in_the_manifest(insider: Insider) -> None:
    """The second patient is taken out of the hold, and with them their head, natives and every
    event (those also on the custodian's chain kept, as out-of-scope): the manifest and the
    proofs agree with each other, the hold events do not."""
    second = patient_subject(insider.matter.patients[1])

    def narrow(parts: Parts) -> None:
        (hold,) = parts.manifest["holds"]
        hold["scope"]["patients"] = [str(insider.matter.patients[0])]
        parts.manifest["subjects"].remove(second)
        parts.proofs["heads"] = [h for h in parts.proofs["heads"] if h["subject"] != second]
        kept = set(parts.manifest["subjects"])
        gone = {r.position for r in parts.records if second in header_of(r).subjects}
        parts.records = [
            r._replace(status=bf.OUT_OF_SCOPE, salt=None, payload=None)
            if r.position in gone and r.status == bf.PRODUCED
            else r
            for r in parts.records
            if r.position not in gone or kept & set(header_of(r).subjects)
        ]
        for native in [n for n in parts.manifest["natives"] if n["position"] in gone]:
            parts.manifest["natives"].remove(native)
            del parts.files[native["path"]]

    lines = insider.rebuild(narrow)
    hold = lh_hold_id(insider)
    assert any(
        line.startswith(f"FAIL hold {hold}: the manifest states active, 1 patient(s)")
        and "give active, 2 patient(s), 1 custodian(s)" in line
        for line in lines
    ), lines
    assert f"FAIL subject {second}: named by a hold, with no completeness or absence proof" in (
        lines
    )


def test_insider_hides_a_hold_event(insider: Insider) -> None:
    """A widening hold event (here the Placed one) labelled out-of-scope so that no scope can
    be read from it."""
    placed = next(
        r for r in insider.parts().records if header_of(r).type == "legal_hold.holds:Hold.Placed"
    )

    def hide(parts: Parts) -> None:
        parts.records = [
            r._replace(status=bf.OUT_OF_SCOPE, salt=None, payload=None)
            if r.position == placed.position
            else r
            for r in parts.records
        ]

    lines = insider.rebuild(hide)
    assert (
        f"FAIL event {placed.position}: legal_hold.holds:Hold.Placed is out-of-scope: every hold "
        "event is produced, so that the scope can be derived from it" in lines
    ), lines


def test_insider_drops_a_privilege_log_row(insider: Insider) -> None:
    p = insider.matter.privileged_position
    lines = insider.rebuild(lambda parts: without_privilege_row(parts, p))
    assert f"FAIL event {p}: withheld with a claim, but not in the privilege log" in lines, lines


def test_the_verifier_carries_the_domains_lists() -> None:
    """verify/ imports nothing of the project, so it keeps its own copies: held equal here."""
    assert bundle_scope.SECRET_EVENT_TYPES == SECRET_EVENT_TYPES
    assert bundle_scope.CREDENTIAL_CLAIM == CREDENTIAL_CLAIM
    assert bundle_scope.CATEGORIES == RECORD_CATEGORIES
    assert set(bundle_scope.CATEGORIES.values()) | {"access", "disclosures"} == set(CATEGORIES)


def test_a_checkpoint_with_two_signature_lines_by_one_key_fails(bundle: Produced) -> None:
    note = entries(bundle.path)[bf.CHECKPOINT]
    body, _, signature_line = note.partition(b"\n\n")
    prefix, _, blob = signature_line.rstrip(b"\n").rpartition(b" ")
    key_hash = base64.b64decode(blob)[:4]
    forged = SigningKey.generate().sign(body + b"\n")
    # The genuine line first, which a reader taking the first line by this key would accept;
    # one taking the last would not. v2 leaves no such choice: two lines by one key fail.
    doubled = note + prefix + b" " + base64.b64encode(key_hash + forged) + b"\n"

    rewrite(bundle.path, lambda files: files.__setitem__(bf.CHECKPOINT, doubled))
    lines = failures(bundle.path)
    assert "FAIL checkpoint.note: two signature lines by the same key" in lines, lines


def test_a_bundle_that_cannot_be_read_is_misuse_exit_2(
    bundle: Produced, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verify_main(["bundle", str(bundle.path.parent)]) == 2  # a folder
    assert "no such file" in capsys.readouterr().err
    if os.geteuid() == 0:
        pytest.skip("root reads every file whatever its mode")
    bundle.path.chmod(0)
    try:
        assert verify_main(["bundle", str(bundle.path)]) == 2
    finally:
        bundle.path.chmod(0o644)
    assert "cannot be read" in capsys.readouterr().err


junk = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 2**40) | st.text(max_size=8)
    | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "scope", "patients", "path", "position"]), inner,
                      max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.data())
def test_any_value_in_any_manifest_field_fails_with_lines_never_a_traceback(
    bundle: Produced, data: st.DataObject
) -> None:
    """The manifest's statements are checked against what the bundle proves; whatever they say,
    and whatever their types, the verifier answers with FAIL lines."""
    original = entries(bundle.path)
    manifest = decode(original[bf.MANIFEST])
    name = data.draw(st.sampled_from(sorted(manifest)), label="field")
    if name == "holds" and data.draw(st.booleans(), label="inside a hold"):
        hold = dict(manifest["holds"][0])
        hold[data.draw(st.sampled_from(sorted(hold)), label="hold field")] = data.draw(junk)
        manifest["holds"] = [hold]
    else:
        manifest[name] = data.draw(junk, label="value")
    assume(encode(manifest) != original[bf.MANIFEST])
    target = bundle.path.with_name("junk.zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        for entry, raw in {**original, bf.MANIFEST: encode(manifest)}.items():
            archive.writestr(entry, raw)

    report = verify_bundle(target)

    assert not report.ok
    assert all(line.item and line.text for line in report.failures)
