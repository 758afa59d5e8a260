"""Bundles carry their checkpoint's witness cosignatures and RFC 3161 timestamps
(docs/BUNDLE_FORMAT.md §13), and ``verify bundle --trusted-witness`` checks them.

The witness is a real ``chartledger witness serve`` process and the TSA is OpenSSL's
``ts -reply`` (tests/integration/test_timestamps.py); the practice sends the production's
checkpoint to both before it writes the bundle. Attacks re-sign the manifest with the practice's
own key, as an insider holding it would.
"""

from __future__ import annotations

import contextlib
import hashlib
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from api.witness.home import WitnessHome
from events.keys import SigningKey
from events.ledger import Ledger
from events.timestamps import load_certificates, request_timestamp, verify_timestamp
from events.witnessing import Outward, add_witness, cosigned_note, send_all, set_tsa
from legal_hold.production import produce
from tests.integration.test_production import a_matter
from tests.integration.test_timestamps import tsa  # noqa: F401  (the OpenSSL TSA fixture)
from tests.support import append_charts, patient
from tests.tamper.test_rollback import WitnessProcess, free_port
from verify import bundle_format as bf
from verify.__main__ import main as verify_main
from verify.bundle import verify_bundle
from verify.bundle_witness import WITNESS_NOTE
from verify.canonical import decode, encode
from verify.checkpoint import parse_note
from verify.cosignature import COSIGNATURE_TYPE, NOTE_ED25519_TYPE, format_vkey, parse_vkey
from verify.errors import MalformedInput
from verify.keyhistory import key_for_size
from verify.rfc3161 import read_timestamp

NAME = "attorney.example/w"
STAMP = "witness/timestamp-1.tsr"


def start_witness(ledger: Ledger, folder: Path, name: str) -> WitnessProcess:
    home = WitnessHome(folder)
    home.create(name)
    log_key = ledger.key_history()[-1].public_key
    home.follow(format_vkey(ledger.origin, NOTE_ED25519_TYPE, log_key))
    return WitnessProcess(folder, free_port())


@pytest.fixture
def witness(ledger: Ledger, tmp_path: Path) -> Iterator[WitnessProcess]:
    process = start_witness(ledger, tmp_path / "witness", NAME)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def witnessed(
    ledger: Ledger,
    witness: WitnessProcess,
    tsa: tuple[str, Path],  # noqa: F811
    tmp_path: Path,
) -> Path:
    """A bundle whose checkpoint the practice's witness cosigned and its TSA timestamped."""
    add_witness(ledger.config.home, witness.url, witness.vkey)
    set_tsa(ledger.config.home, tsa[0], str(tsa[1]))
    matter = a_matter(ledger)
    out = tmp_path / "bundle.zip"
    produce(ledger, matter.matter_id, out, by=matter.risk)
    return out


def entries(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def resign(ledger: Ledger, path: Path, change: Callable[[dict[str, bytes]], None]) -> None:
    """Change entries, list them again in the manifest and sign it with the practice's key."""
    found = entries(path)
    manifest = decode(found.pop(bf.MANIFEST))
    found.pop(bf.SIGNATURE)
    change(found)
    manifest["files"] = [
        {"path": name, "size": len(data), "sha256": hashlib.sha256(data).digest()}
        for name, data in sorted(found.items(), key=lambda item: item[0].encode())
    ]
    raw = encode(manifest)
    key = key_for_size(ledger.key_history(), manifest["checkpoint"]["size"])
    signature = ledger.signing_key(key.key_id).sign(raw)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(bf.MANIFEST, raw)
        archive.writestr(bf.SIGNATURE, encode({"key_id": key.key_id, "signature": signature}))
        for name, data in found.items():
            archive.writestr(name, data)


def lines(path: Path, *witnesses: str, tsas: tuple[Path, ...] = ()) -> list[str]:
    report = verify_bundle(
        path,
        trusted_witnesses=[parse_vkey(w) for w in witnesses],
        trusted_tsas=[x509.load_pem_x509_certificate(p.read_bytes()) for p in tsas],
    )
    return [str(line) for line in report.lines]


def fails(path: Path, *witnesses: str, tsas: tuple[Path, ...] = ()) -> list[str]:
    return [line for line in lines(path, *witnesses, tsas=tsas) if line.startswith("FAIL")]


def tsa_pem(tsa: tuple[str, Path]) -> Path:  # noqa: F811
    """The TSA's own certificate (the fixture gives its root's)."""
    return tsa[1].parent / "tsa.pem"


TSA_ITEM = "tsa CN=Test TSA"


def test_a_witnessed_bundle_verifies_with_the_trusted_witness(
    witnessed: Path,
    witness: WitnessProcess,
    tsa: tuple[str, Path],  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    found = entries(witnessed)
    note = found[WITNESS_NOTE]
    assert note.startswith(found[bf.CHECKPOINT]) and f"— {NAME} ".encode() in note
    # The timestamp is the TSA's, over the checkpoint's body, as events/timestamps checks it.
    body = parse_note(found[bf.CHECKPOINT]).body
    verify_timestamp(found[STAMP], body, load_certificates(tsa[1].read_bytes()))
    # Listed and signed like every entry.
    listed = {f["path"] for f in decode(found[bf.MANIFEST])["files"]}
    assert {WITNESS_NOTE, STAMP} <= listed

    shown = lines(witnessed, witness.vkey)
    assert not [line for line in shown if line.startswith("FAIL")], shown
    assert any(line.startswith(f"OK witness {NAME}: trusted") for line in shown), shown
    assert any(line.startswith(f"OK timestamp {STAMP}") for line in shown), shown
    untrusted = lines(witnessed)
    assert any(line.startswith(f"OK {WITNESS_NOTE}") and NAME in line for line in untrusted)
    assert not any(line.startswith("OK witness ") for line in untrusted)

    capsys.readouterr()
    trust = ["--trusted-witness", witness.vkey, "--trusted-tsa", str(tsa_pem(tsa))]
    code = verify_main(["bundle", str(witnessed), "--workers", "1", *trust])
    assert code == 0, capsys.readouterr().out
    capsys.readouterr()
    code = verify_main(["bundle", str(witnessed), "--trusted-witness", "not-a-vkey"])
    out = capsys.readouterr()
    assert code == 2 and out.out == "" and len(out.err.strip().splitlines()) == 1
    code = verify_main(["bundle", str(witnessed), "--trusted-tsa", str(witnessed)])
    out = capsys.readouterr()
    assert code == 2 and out.out == "" and len(out.err.strip().splitlines()) == 1


def test_a_trusted_tsa_must_have_signed_a_timestamp_of_the_checkpoint(
    ledger: Ledger,
    witnessed: Path,
    tsa: tuple[str, Path],  # noqa: F811
) -> None:
    shown = lines(witnessed, tsas=(tsa_pem(tsa),))
    assert not [line for line in shown if line.startswith("FAIL")], shown
    assert any(line.startswith(f"OK {TSA_ITEM}: trusted") for line in shown), shown
    # Its root is not the TSA: the reader names the TSA by the certificate that signs.
    assert [line.split(":")[0] for line in fails(witnessed, tsas=(tsa[1],))] == ["FAIL tsa CN=root"]


def test_a_backdated_or_forged_timestamp_fails_the_trusted_tsa(
    ledger: Ledger,
    witnessed: Path,
    tsa: tuple[str, Path],  # noqa: F811
) -> None:
    original = entries(witnessed)[STAMP]
    when = read_timestamp(original).gen_time.encode()
    assert original.count(when) == 1
    # The insider moves the TSA's time back a year (the imprint still fits the checkpoint)...
    earlier = str(int(when[:4]) - 1).encode() + when[4:]
    resign(
        ledger, witnessed, lambda found: found.__setitem__(STAMP, original.replace(when, earlier))
    )
    assert fails(witnessed) == []  # without a trusted TSA, the time is only the producer's word
    assert [line.split(":")[0] for line in fails(witnessed, tsas=(tsa_pem(tsa),))] == [
        f"FAIL {TSA_ITEM}"
    ]
    # ...or changes a byte of the TSA's signature.
    flipped = original[:-1] + bytes([original[-1] ^ 1])
    resign(ledger, witnessed, lambda found: found.__setitem__(STAMP, flipped))
    assert [line.split(":")[0] for line in fails(witnessed, tsas=(tsa_pem(tsa),))] == [
        f"FAIL {TSA_ITEM}"
    ]


def test_another_witness_key_fails_naming_it(witnessed: Path) -> None:
    other = format_vkey("other.example/w", COSIGNATURE_TYPE, SigningKey.generate().public_key)
    # The same name under another key is not that witness either.
    renamed = format_vkey(NAME, COSIGNATURE_TYPE, SigningKey.generate().public_key)
    for vkey in (other, renamed):
        name = parse_vkey(vkey).name
        assert [line.split(":")[0] for line in fails(witnessed, vkey)] == [f"FAIL witness {name}"]


def test_a_flipped_cosignature_fails_naming_the_witness(
    ledger: Ledger, witnessed: Path, witness: WitnessProcess
) -> None:
    def flip(found: dict[str, bytes]) -> None:
        note = found[WITNESS_NOTE]
        base = len(found[bf.CHECKPOINT])
        line = note[base:].decode()
        name = line.split(" ")[1]
        # A byte of the signature (past the key hash and time), still valid base64.
        at = len(f"— {name} ") + 40
        swapped = "A" if line[at] != "A" else "B"
        found[WITNESS_NOTE] = note[:base] + (line[:at] + swapped + line[at + 1 :]).encode()

    resign(ledger, witnessed, flip)
    assert fails(witnessed) == []  # its shape is right: without trust it is only listed
    failed = fails(witnessed, witness.vkey)
    assert [line.split(":")[0] for line in failed] == [f"FAIL witness {NAME}"], failed


def test_a_stripped_or_foreign_cosignature_fails(
    ledger: Ledger, witnessed: Path, witness: WitnessProcess
) -> None:
    # The insider drops the witness area: the trusted witness's cosignature is missing.
    resign(ledger, witnessed, lambda found: found.pop(WITNESS_NOTE))
    failed = fails(witnessed, witness.vkey)
    assert [line.split(":")[0] for line in failed] == [f"FAIL witness {NAME}"], failed


def test_a_note_that_is_not_the_bundle_checkpoint_fails(ledger: Ledger, witnessed: Path) -> None:
    def garble(found: dict[str, bytes]) -> None:
        found[WITNESS_NOTE] = found[WITNESS_NOTE] + b"- not a signature line\n"
        found["witness/extra.txt"] = b"x"

    resign(ledger, witnessed, garble)
    failed = [line.split(":")[0] for line in fails(witnessed)]
    assert failed == ["FAIL file witness/extra.txt", f"FAIL {WITNESS_NOTE}"], failed


def test_a_cosigned_note_of_another_checkpoint_fails(
    ledger: Ledger, witnessed: Path, witness: WitnessProcess
) -> None:
    # The log grows, its next checkpoint is witnessed; the insider puts that cosigned note in
    # the bundle in place of its own checkpoint's (a valid cosignature, of another tree).
    append_charts(ledger, [patient()], events_per_chart=1)
    later = ledger.checkpointer.issue().size
    assert send_all(ledger.db, Outward.load(ledger.config.home)) == []
    other = cosigned_note(ledger.db, later)
    resign(ledger, witnessed, lambda found: found.__setitem__(WITNESS_NOTE, other))
    failed = [line.split(":")[0] for line in fails(witnessed, witness.vkey)]
    assert failed == [f"FAIL {WITNESS_NOTE}", f"FAIL witness {NAME}"], failed


def test_a_timestamp_of_another_checkpoint_fails(
    ledger: Ledger,
    witnessed: Path,
    tsa: tuple[str, Path],  # noqa: F811
) -> None:
    roots = load_certificates(tsa[1].read_bytes())
    earlier = request_timestamp(tsa[0], b"another checkpoint body\n", roots)
    resign(ledger, witnessed, lambda found: found.__setitem__(STAMP, earlier))
    failed = fails(witnessed)
    assert [line.split(":")[0] for line in failed] == [f"FAIL timestamp {STAMP}"], failed
    assert "imprint" in failed[0]


def test_a_bundle_without_cosignatures_fails_a_trusted_witness(
    ledger: Ledger, tmp_path: Path
) -> None:
    matter = a_matter(ledger)
    out = tmp_path / "plain.zip"
    produce(ledger, matter.matter_id, out, by=matter.risk)
    assert not any(name.startswith("witness/") for name in entries(out))
    assert fails(out) == []
    vkey = format_vkey(NAME, COSIGNATURE_TYPE, SigningKey.generate().public_key)
    failed = fails(out, vkey)
    assert [line.split(":")[0] for line in failed] == [f"FAIL witness {NAME}"], failed


def test_a_witness_that_is_down_never_stops_the_production(ledger: Ledger, tmp_path: Path) -> None:
    vkey = format_vkey(NAME, COSIGNATURE_TYPE, SigningKey.generate().public_key)
    add_witness(ledger.config.home, f"http://127.0.0.1:{free_port()}", vkey)
    matter = a_matter(ledger)
    out = tmp_path / "down.zip"
    produce(ledger, matter.matter_id, out, by=matter.risk)
    assert WITNESS_NOTE not in entries(out) and fails(out) == []
    assert [line.split(":")[0] for line in fails(out, vkey)] == [f"FAIL witness {NAME}"]


# --- the RFC 3161 reader, as a property ---------------------------------------------------------


def der(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 128 else bytes([0x80 | 2]) + n.to_bytes(2, "big")
    return bytes([tag]) + length + value


def oid(text: str) -> bytes:
    parts = [int(p) for p in text.split(".")]
    out = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        while part > 0x7F:
            part >>= 7
            chunk.append(0x80 | (part & 0x7F))
        out += bytes(reversed(chunk))
    return der(0x06, bytes(out))


def response(algorithm: str, imprint: bytes, gen_time: str, status: int) -> bytes:
    tst = der(
        0x30,
        der(0x02, b"\x01")
        + oid("1.2.3.4.1")
        + der(0x30, der(0x30, oid(algorithm) + der(0x05, b"")) + der(0x04, imprint))
        + der(0x02, b"\x05")
        + der(0x18, gen_time.encode()),
    )
    encap = der(0x30, oid("1.2.840.113549.1.9.16.1.4") + der(0xA0, der(0x04, tst)))
    sha256 = der(0x30, oid("2.16.840.1.101.3.4.2.1"))
    attrs = der(0x30, oid("1.2.840.113549.1.9.3") + der(0x31, oid("1.2.840.113549.1.9.16.1.4")))
    attrs += der(0x30, oid("1.2.840.113549.1.9.4") + der(0x31, der(0x04, b"d" * 32)))
    signer = der(
        0x30,
        der(0x02, b"\x01")
        + der(0x30, b"")
        + sha256
        + der(0xA0, attrs)
        + der(0x30, oid("1.2.840.10045.4.3.2"))
        + der(0x04, b"s" * 70),
    )
    signed = der(0x30, der(0x02, b"\x03") + der(0x31, b"") + encap + der(0x31, signer))
    token = der(0x30, oid("1.2.840.113549.1.7.2") + der(0xA0, signed))
    return der(0x30, der(0x30, der(0x02, bytes([status]))) + token)


ALGORITHMS = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.3": "sha512"}


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(sorted(ALGORITHMS)),
    st.binary(min_size=0, max_size=200),
    st.from_regex(r"\A20[0-9]{12}Z\Z", fullmatch=True),
    st.integers(0, 5),
)
def test_the_imprint_reader_reads_back_what_was_written(
    algorithm: str, imprint: bytes, gen_time: str, status: int
) -> None:
    data = response(algorithm, imprint, gen_time, status)
    if status > 1:
        with pytest.raises(MalformedInput):
            read_timestamp(data)
        return
    stamp = read_timestamp(data)
    assert (stamp.algorithm, stamp.imprint, stamp.gen_time) == (
        ALGORITHMS[algorithm],
        imprint,
        gen_time,
    )
    assert (stamp.message_digest, stamp.signature) == (b"d" * 32, b"s" * 70)
    assert stamp.signed_attrs[0] == 0x31 and stamp.signed_attrs.endswith(b"d" * 32)
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(MalformedInput):
            read_timestamp(data[:cut])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_the_imprint_reader_refuses_any_bytes_with_malformed_input(data: bytes) -> None:
    with contextlib.suppress(MalformedInput):
        read_timestamp(data)
