"""The backup's cosignature and timestamp records (docs/BACKUP_FORMAT.md §6.1): they round-trip
exactly through the record files, a cosignature by a known witness is counted verified, and any
bit changed in its signed blob is refused."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from events.backup_format import (
    COSIGNATURE_KEYS,
    COSIGNATURE_TYPES,
    TIMESTAMP_KEYS,
    TIMESTAMP_TYPES,
    BackupInvalid,
    RecordWriter,
    read_records,
)
from events.backup_witnessed import check_cosignatures
from verify.canonical import pack_ordered
from verify.checkpoint import UnverifiedCheckpoint, format_body, format_note, parse_note
from verify.cosignature import (
    COSIGNATURE_TYPE,
    Cosignature,
    Vkey,
    cosignature_key_hash,
    cosigned_message,
    format_cosignature,
)

SETTINGS = settings(max_examples=60, deadline=None)
ORIGIN = "chartledger.local/property"
names = st.from_regex(r"\A[a-z0-9.]{1,12}/[a-z0-9]{1,8}\Z")
sizes = st.integers(min_value=0, max_value=2**40)


@SETTINGS
@given(
    cosignatures=st.lists(st.tuples(st.text(max_size=120), sizes, names), max_size=10),
    timestamps=st.lists(
        st.tuples(st.text(max_size=60), sizes, st.binary(max_size=300)), max_size=10
    ),
)
def test_cosignature_and_timestamp_records_come_back_exactly(
    cosignatures: list[tuple[str, int, str]], timestamps: list[tuple[str, int, bytes]]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, keys, types, rows in (
            ("cosignatures.msgpack", COSIGNATURE_KEYS, COSIGNATURE_TYPES, cosignatures),
            ("timestamps.msgpack", TIMESTAMP_KEYS, TIMESTAMP_TYPES, timestamps),
        ):
            writer = RecordWriter(folder, name)
            for row in rows:
                writer.write(pack_ordered(dict(zip(keys, row, strict=True))))
            entry = writer.close()
            back = [tuple(r.values()) for r in read_records(folder, entry, keys, types)]
            assert back == rows


def checkpoint(size: int, root: bytes) -> UnverifiedCheckpoint:
    body = format_body(ORIGIN, size, root, bytes(32), "2026-01-01T00:00:00.000000Z", "0" * 64)
    return parse_note(format_note(body, ORIGIN, bytes(4), bytes(64)))


def cosign(seed: bytes, name: str, at: UnverifiedCheckpoint, time: int) -> tuple[Vkey, str]:
    key = Ed25519PrivateKey.from_private_bytes(seed)
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    signature = key.sign(cosigned_message(at.body, time))
    line = format_cosignature(
        Cosignature(name, cosignature_key_hash(name, public), time, signature)
    ).removesuffix("\n")
    return Vkey(name, COSIGNATURE_TYPE, public), line


@SETTINGS
@given(
    seed=st.binary(min_size=32, max_size=32),
    name=names,
    size=sizes,
    root=st.binary(min_size=32, max_size=32),
    time=st.integers(min_value=0, max_value=2**63 - 1),
    bit=st.integers(min_value=0, max_value=76 * 8 - 1),
)
def test_a_known_witness_cosignature_verifies_and_any_changed_bit_is_refused(
    seed: bytes, name: str, size: int, root: bytes, time: int, bit: int
) -> None:
    at = checkpoint(size, root)
    vkey, line = cosign(seed, name, at, time)
    row = {"line": line, "size": size, "witness": name}
    assert check_cosignatures(iter([row]), {size: at}, [vkey]) == (1, 1)
    assert check_cosignatures(iter([row]), {size: at}, []) == (1, 0)  # well formed, unknown key
    prefix, _, blob = line.rpartition(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[bit // 8] ^= 1 << (bit % 8)
    changed = {**row, "line": f"{prefix} {base64.b64encode(bytes(raw)).decode()}"}
    with pytest.raises(BackupInvalid, match=f"the cosignature by '{name}' at size {size}"):
        check_cosignatures(iter([changed]), {size: at}, [vkey])
