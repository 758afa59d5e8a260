"""Tampering with a produced bundle as whoever holds the file would: bytes flipped in place,
entries of the archive rewritten, removed or swapped, a checkpoint re-signed or taken from
another practice's log. Each is caught with a FAIL line naming the item, never a traceback."""

from __future__ import annotations

import base64
import struct
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.base import patient_subject
from domain.practice import Practice
from events.config import StoreConfig
from events.keys import SigningKey
from events.ledger import Ledger, create_practice_files, record_genesis_key
from legal_hold import holds as lh
from legal_hold.holds import Scope
from legal_hold.production import produce
from tests.integration.test_ledger_store import QUIET
from tests.integration.test_production import T0, a_matter
from tests.support import init_practice
from verify import bundle_format as bf
from verify.__main__ import main as verify_main
from verify.bundle import verify_bundle
from verify.canonical import decode, encode


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
