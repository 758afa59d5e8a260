"""Checkpoints as C2SP signed notes (LEDGER_FORMAT.md §8), with real Ed25519 keys."""

from __future__ import annotations

import base64
import hashlib

import pytest

from events.keys import SigningKey
from verify.checkpoint import (
    UnverifiedCheckpoint,
    format_body,
    format_note,
    parse_note,
    verify_checkpoint,
)
from verify.errors import MalformedInput, SignatureInvalid, UnknownKey
from verify.signing import key_id, note_key_hash

ORIGIN = "chartledger.local/5d0c7a4e-2f1b-4e6a-9c3d-8b7a6f5e4d3c"
ROOT = hashlib.sha256(b"root").digest()
SUBJECTS_ROOT = hashlib.sha256(b"subjects root").digest()
TIME = "2026-11-25T06:45:05.123456Z"
SIZE = 1042

KEY = SigningKey.generate()
OTHER = SigningKey.generate()


def body(signer: SigningKey = KEY, size: int = SIZE, origin: str = ORIGIN) -> bytes:
    return format_body(origin, size, ROOT, SUBJECTS_ROOT, TIME, signer.key_id)


def note(
    signer: SigningKey = KEY,
    *,
    data: bytes | None = None,
    name: str = ORIGIN,
    key_hash: bytes | None = None,
    signed_by: SigningKey | None = None,
) -> bytes:
    """A signed note: ``data`` (default: the body naming ``signer``) signed by ``signed_by``."""
    data = body(signer) if data is None else data
    signed_by = signed_by or signer
    key_hash = signed_by.note_key_hash(ORIGIN) if key_hash is None else key_hash
    return format_note(data, name, key_hash, signed_by.sign(data))


def signature_line(signer: SigningKey, data: bytes, name: str = ORIGIN) -> bytes:
    blob = base64.b64encode(signer.note_key_hash(ORIGIN) + signer.sign(data)).decode()
    return f"— {name} {blob}\n".encode()


# --- the format --------------------------------------------------------------------------------


def test_the_body_is_the_tlog_checkpoint_with_three_extension_lines() -> None:
    assert (
        body()
        == (
            f"{ORIGIN}\n{SIZE}\n{base64.b64encode(ROOT).decode()}\n"
            f"subjects {base64.b64encode(SUBJECTS_ROOT).decode()}\n"
            f"time {TIME}\nkey {KEY.key_id}\n"
        ).encode()
    )


def test_a_note_is_the_body_a_blank_line_and_an_em_dash_signature_line() -> None:
    data = body()
    text = note().decode()
    assert text.startswith(data.decode() + "\n— " + ORIGIN + " ")
    assert text.endswith("\n")
    blob = base64.b64decode(text.rstrip("\n").rsplit(" ", 1)[1])
    assert len(blob) == 4 + 64
    assert blob[:4] == note_key_hash(ORIGIN, KEY.public_key)


def test_the_key_id_and_the_note_key_hash_are_the_ones_section_8_defines() -> None:
    assert KEY.key_id == key_id(KEY.public_key) == hashlib.sha256(KEY.public_key).hexdigest()
    expected = hashlib.sha256(ORIGIN.encode() + b"\x0a\x01" + KEY.public_key).digest()[:4]
    assert KEY.note_key_hash(ORIGIN) == expected


def test_a_formatted_note_parses_back_into_its_fields() -> None:
    data = body()
    assert parse_note(note()) == UnverifiedCheckpoint(
        origin=ORIGIN,
        size=SIZE,
        root=ROOT,
        subjects_root=SUBJECTS_ROOT,
        time=TIME,
        key_id=KEY.key_id,
        body=data,
        signatures=((ORIGIN, KEY.note_key_hash(ORIGIN), KEY.sign(data)),),
    )


def test_a_checkpoint_of_the_empty_log_round_trips() -> None:
    data = body(size=0)
    parsed = parse_note(note(data=data))
    assert parsed.size == 0
    verify_checkpoint(parsed, KEY.public_key)


def test_a_checkpoint_signed_by_its_key_verifies() -> None:
    assert verify_checkpoint(parse_note(note()), KEY.public_key) is None


def test_a_witness_cosignature_before_ours_is_skipped() -> None:
    data = body()
    text = (
        data
        + b"\n"
        + signature_line(OTHER, data, "witness.example/log")
        + signature_line(KEY, data)
    )
    parsed = parse_note(text)
    assert [name for name, _, _ in parsed.signatures] == ["witness.example/log", ORIGIN]
    verify_checkpoint(parsed, KEY.public_key)


# --- signatures that do not verify -------------------------------------------------------------

INVALID = rf"^checkpoint at size {{size}}: signature is invalid for key {KEY.key_id[:16]}…$"


@pytest.mark.parametrize(
    ("old", "new", "size"),
    [
        (f"\n{SIZE}\n", f"\n{SIZE + 1}\n", SIZE + 1),
        (f"\n{SIZE}\n", "\n1\n", 1),
        (base64.b64encode(ROOT).decode(), base64.b64encode(SUBJECTS_ROOT).decode(), SIZE),
        (
            "subjects " + base64.b64encode(SUBJECTS_ROOT).decode(),
            "subjects " + "A" * 43 + "=",
            SIZE,
        ),
        (TIME, TIME.replace("05.123456", "05.123457"), SIZE),
    ],
)
def test_a_changed_body_line_breaks_the_signature(old: str, new: str, size: int) -> None:
    changed = note().decode()
    assert changed.count(old) == 1
    changed = changed.replace(old, new)
    with pytest.raises(SignatureInvalid, match=INVALID.format(size=size)):
        verify_checkpoint(parse_note(changed.encode()), KEY.public_key)


@pytest.mark.parametrize("line", [2, 3, 4])
def test_any_changed_character_of_the_root_lines_or_time_breaks_the_signature(line: int) -> None:
    original = note()
    lines = original.split(b"\n")
    start = sum(len(x) + 1 for x in lines[:line])
    checked = 0
    for i in range(start, start + len(lines[line])):
        for replacement in b"0A":
            if original[i] == replacement or not chr(original[i]).isalnum():
                continue
            changed = original[:i] + bytes([replacement]) + original[i + 1 :]
            try:
                parsed = parse_note(changed)
            except MalformedInput:
                continue  # e.g. an impossible time: refused before any signature is checked
            with pytest.raises(SignatureInvalid, match=INVALID.format(size=SIZE)):
                verify_checkpoint(parsed, KEY.public_key)
            checked += 1
    assert checked >= 10


def test_a_flipped_signature_bit_is_invalid() -> None:
    data = body()
    signature = bytearray(KEY.sign(data))
    signature[10] ^= 0x01
    text = format_note(data, ORIGIN, KEY.note_key_hash(ORIGIN), bytes(signature))
    with pytest.raises(SignatureInvalid, match=INVALID.format(size=SIZE)):
        verify_checkpoint(parse_note(text), KEY.public_key)


def test_a_signature_by_another_key_under_our_key_hash_is_invalid() -> None:
    # The line claims to be by KEY (its key hash) but OTHER signed: Ed25519 refuses it.
    text = note(key_hash=KEY.note_key_hash(ORIGIN), signed_by=OTHER)
    with pytest.raises(SignatureInvalid, match=INVALID.format(size=SIZE)):
        verify_checkpoint(parse_note(text), KEY.public_key)


def test_a_signature_line_by_another_key_is_not_a_signature_by_the_named_key() -> None:
    # The body names KEY; the only signature line is OTHER's, honestly labelled.
    text = note(KEY, signed_by=OTHER)
    with pytest.raises(
        UnknownKey,
        match=rf"^checkpoint at size {SIZE}: no signature line by key {KEY.key_id[:16]}…$",
    ):
        verify_checkpoint(parse_note(text), KEY.public_key)


def test_a_checkpoint_naming_another_key_than_the_one_in_force_is_refused() -> None:
    # Signed by OTHER throughout, but OTHER is not the key the history says is in force.
    with pytest.raises(
        UnknownKey,
        match=rf"^checkpoint at size {SIZE}: names key {OTHER.key_id[:16]}…, "
        rf"expected {KEY.key_id[:16]}…$",
    ):
        verify_checkpoint(parse_note(note(OTHER)), KEY.public_key)


def test_a_signature_line_for_another_origin_is_not_ours() -> None:
    text = note(name="chartledger.local/00000000-0000-4000-8000-000000000000")
    with pytest.raises(UnknownKey, match=rf"no signature line by key {KEY.key_id[:16]}…$"):
        verify_checkpoint(parse_note(text), KEY.public_key)


def test_a_key_hash_computed_for_another_origin_is_not_ours() -> None:
    text = note(key_hash=KEY.note_key_hash("chartledger.local/other"))
    with pytest.raises(UnknownKey, match=rf"no signature line by key {KEY.key_id[:16]}…$"):
        verify_checkpoint(parse_note(text), KEY.public_key)


def test_a_checkpoint_of_another_origin_is_not_ours_even_when_signed_for_it() -> None:
    # Body, name and key hash all say another origin, signed by our key: the signature is
    # sound for that origin, so only the caller's origin check can tell (verify/store.py does).
    other_origin = "chartledger.local/other"
    data = body(origin=other_origin)
    text = format_note(data, other_origin, KEY.note_key_hash(other_origin), KEY.sign(data))
    parsed = parse_note(text)
    verify_checkpoint(parsed, KEY.public_key)
    assert parsed.origin == other_origin


# --- notes that do not parse -------------------------------------------------------------------


def _replace(old: str, new: str) -> bytes:
    text = note().decode()
    assert old in text
    return text.replace(old, new, 1).encode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (note().replace(b"\n\n", b"\n"), "no blank line before the signatures"),
        (note().rstrip(b"\n"), "no blank line before the signatures"),
        (body(), "no blank line before the signatures"),
        (_replace(f"\n{SIZE}\n", "\n01\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n00\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n-1\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n+1042\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n 1042\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n1,042\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n１０４２\n"), "invalid log size"),
        (_replace(f"\n{SIZE}\n", "\n" + "9" * 21 + "\n"), "invalid log size"),
        (_replace(f"key {KEY.key_id}\n", ""), "5 body lines, want 6"),
        (_replace(f"time {TIME}\n", ""), "5 body lines, want 6"),
        (_replace(f"key {KEY.key_id}\n", f"key {KEY.key_id}\nextra line\n"), "7 body lines"),
        (_replace(ORIGIN + "\n", ""), "5 body lines, want 6"),
        (_replace(ORIGIN + "\n", "chartledger.local/a b\n"), "invalid origin"),
        (b"\n" + note()[len(ORIGIN) + 1 :], "invalid origin"),
        (_replace("subjects ", "heads "), "expected a 'subjects' line"),
        (_replace("subjects ", "subjects"), "expected a 'subjects' line"),
        (_replace("time ", "Time "), "expected a 'time' line"),
        (_replace(f"key {KEY.key_id}", f"keyid {KEY.key_id}"), "expected a 'key' line"),
        (_replace("\n— ", "\n- "), "signature line must start with '— '"),
        (_replace("\n— ", "\n—"), "signature line must start with '— '"),
        (note() + b"\n", "signature line must start with '— '"),
        (note() + b"trailing\n", "signature line must start with '— '"),
        (_replace(base64.b64encode(ROOT).decode(), "not base64!"), "root hash is not base64"),
        (_replace(base64.b64encode(ROOT).decode(), base64.b64encode(ROOT).decode()[:-1]), "root"),
        (
            _replace(base64.b64encode(ROOT).decode(), base64.b64encode(ROOT[:31]).decode()),
            "root hash is 31 bytes, want 32",
        ),
        (
            _replace("subjects " + base64.b64encode(SUBJECTS_ROOT).decode(), "subjects AAAA"),
            "subjects root is 3 bytes, want 32",
        ),
        (_replace(f"{ORIGIN} ", f"{ORIGIN} ***"), "signature is not base64"),
        (_replace(f"{ORIGIN} ", f"{ORIGIN} AAAA"), "signature is 71 bytes, want 68"),
    ],
)
def test_a_malformed_note_is_refused(text: bytes, message: str) -> None:
    with pytest.raises(MalformedInput, match=rf"^malformed checkpoint: {message}"):
        parse_note(text)


@pytest.mark.parametrize(
    "time",
    ["2026-11-25T06:45:05Z", "2026-11-25 06:45:05.123456Z", "2026-11-25T06:45:05.123456+00:00"],
)
def test_a_note_whose_time_is_not_a_timestamp_is_refused(time: str) -> None:
    with pytest.raises(MalformedInput, match=r"^not a timestamp of the form"):
        parse_note(_replace(f"time {TIME}", f"time {time}"))


def test_a_note_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(MalformedInput, match=r"^malformed checkpoint: not UTF-8$"):
        parse_note(note().replace("—".encode(), b"\x97"))


def test_a_signature_line_with_a_short_signature_is_invalid() -> None:
    # 4 + 63 bytes is not 68: refused at parse time, before any key is tried.
    data = body()
    blob = base64.b64encode(KEY.note_key_hash(ORIGIN) + KEY.sign(data)[:63]).decode()
    with pytest.raises(MalformedInput, match=r"^malformed checkpoint: signature is 67 bytes"):
        parse_note(data + f"\n— {ORIGIN} {blob}\n".encode())
