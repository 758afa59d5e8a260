"""Cosignatures (cosignature/v1) and verifier keys: each encoding reads back as written, a
cosignature verifies for exactly the body, time and key it was made with, and a witness's
request parser and the checkpoint-file reader split signature lines the same way.

Keys are made from drawn 32-byte seeds, so every example is reproducible.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from verify.checkpoint import format_body, format_note, parse_note, verify_checkpoint
from verify.cosignature import (
    COSIGNATURE_TYPE,
    NOTE_ED25519_TYPE,
    Cosignature,
    cosignature_key_hash,
    cosigned_message,
    format_cosignature,
    format_vkey,
    parse_cosignature,
    parse_vkey,
    split_signed_note,
    verify_cosignature,
)
from verify.errors import VerificationError
from verify.signing import key_id, note_key_hash
from verify.witness import read_outside_checkpoint

NAME_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="+")
names = st.text(NAME_CHARS, min_size=1, max_size=40)
seeds = st.binary(min_size=32, max_size=32)
timestamps = st.integers(min_value=0, max_value=2**63 - 1)
# A checkpoint body: origin, size, root, then extension lines (which are signed too).
bodies = st.builds(
    lambda origin, size, root, extra: (
        "\n".join([origin, str(size), base64.b64encode(root).decode(), *extra]) + "\n"
    ).encode(),
    names,
    st.integers(min_value=0, max_value=2**64 - 1),
    st.binary(min_size=32, max_size=32),
    st.lists(st.text(NAME_CHARS, min_size=1, max_size=20), max_size=3),
)


def key_of(seed: bytes) -> tuple[Ed25519PrivateKey, bytes]:
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return private, private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def cosign(seed: bytes, name: str, body: bytes, timestamp: int) -> str:
    private, public = key_of(seed)
    signature = private.sign(cosigned_message(body, timestamp))
    return format_cosignature(
        Cosignature(name, cosignature_key_hash(name, public), timestamp, signature)
    )


@given(names, seeds, st.sampled_from([NOTE_ED25519_TYPE, COSIGNATURE_TYPE]))
def test_a_vkey_reads_back_as_written(name: str, seed: bytes, key_type: int) -> None:
    _, public = key_of(seed)
    text = format_vkey(name, key_type, public)
    vkey = parse_vkey(text)
    assert (vkey.name, vkey.key_type, vkey.public_key) == (name, key_type, public)
    # The key hash is signed-note's: SHA-256(name || LF || type || key), first 4 bytes.
    assert (
        vkey.key_hash
        == hashlib.sha256(name.encode() + b"\n" + bytes([key_type]) + public).digest()[:4]
    )
    assert text.split("+", 2)[1] == vkey.key_hash.hex()


@given(names, seeds, st.integers(min_value=0, max_value=7))
def test_a_vkey_with_a_wrong_key_hash_is_refused(name: str, seed: bytes, digit: int) -> None:
    _, public = key_of(seed)
    head, hash_hex, blob = format_vkey(name, COSIGNATURE_TYPE, public).split("+", 2)
    wrong = (
        hash_hex[:digit] + format((int(hash_hex[digit], 16) + 1) % 16, "x") + hash_hex[digit + 1 :]
    )
    with pytest.raises(VerificationError):
        parse_vkey(f"{head}+{wrong}+{blob}")


@given(seeds, names, bodies, timestamps)
def test_a_cosignature_reads_back_and_verifies(
    seed: bytes, name: str, body: bytes, timestamp: int
) -> None:
    _, public = key_of(seed)
    line = cosign(seed, name, body, timestamp)
    assert line.endswith("\n") and line.startswith("— ")
    parsed = parse_cosignature(line)
    assert (parsed.name, parsed.timestamp) == (name, timestamp)
    assert format_cosignature(parsed) == line
    witness = parse_vkey(format_vkey(name, COSIGNATURE_TYPE, public))
    assert verify_cosignature(body, line, witness) == timestamp


@given(seeds, names, bodies, timestamps, st.data())
def test_a_cosignature_fails_for_any_other_body_or_time(
    seed: bytes, name: str, body: bytes, timestamp: int, data: st.DataObject
) -> None:
    _, public = key_of(seed)
    witness = parse_vkey(format_vkey(name, COSIGNATURE_TYPE, public))
    line = cosign(seed, name, body, timestamp)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    changed = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
    with pytest.raises(VerificationError):
        verify_cosignature(changed, line, witness)
    other_time = data.draw(timestamps.filter(lambda t: t != timestamp))
    parsed = parse_cosignature(line)
    moved = format_cosignature(parsed._replace(timestamp=other_time))
    with pytest.raises(VerificationError):
        verify_cosignature(body, moved, witness)


@given(seeds, seeds, names, bodies, timestamps)
def test_a_cosignature_verifies_only_under_its_own_key(
    seed: bytes, other: bytes, name: str, body: bytes, timestamp: int
) -> None:
    _, public = key_of(other)
    if other == seed:
        return
    line = cosign(seed, name, body, timestamp)
    with pytest.raises(VerificationError):
        verify_cosignature(body, line, parse_vkey(format_vkey(name, COSIGNATURE_TYPE, public)))


@given(bodies, st.lists(st.tuples(seeds, names, timestamps), min_size=1, max_size=4))
def test_a_signed_note_splits_into_its_body_and_lines(
    body: bytes, signers: list[tuple[bytes, str, int]]
) -> None:
    lines = [cosign(seed, name, body, t) for seed, name, t in signers]
    note = body + b"\n" + "".join(lines).encode()
    got_body, got_lines = split_signed_note(note)
    assert got_body == body
    assert [line + "\n" for line in got_lines] == lines


@given(
    seeds,
    st.integers(min_value=0, max_value=2**40),
    st.binary(min_size=32, max_size=32),
    st.lists(st.tuples(seeds, names, timestamps), max_size=3),
)
def test_a_checkpoint_file_splits_into_the_log_signature_and_cosignatures(
    seed: bytes, size: int, root: bytes, signers: list[tuple[bytes, str, int]]
) -> None:
    private, public = key_of(seed)
    origin = "chartledger.local/practice"
    body = format_body(
        origin, size, root, root[::-1], "2026-01-01T00:00:00.000000Z", key_id(public)
    )
    note = format_note(body, origin, note_key_hash(origin, public), private.sign(body))
    lines = [cosign(s, name, body, t) for s, name, t in signers]
    outside = read_outside_checkpoint(note + "".join(lines).encode())
    assert outside.checkpoint == parse_note(note)
    assert [line + "\n" for line in outside.other_lines] == lines
    verify_checkpoint(outside.checkpoint, public)
