"""The signing key history (LEDGER_FORMAT.md §9): each key signed by itself and its predecessor."""

from __future__ import annotations

from typing import Any

import pytest

from events.keys import SigningKey
from verify.canonical import encode
from verify.errors import ChainBroken, MalformedInput, SignatureInvalid, UnknownKey
from verify.keyhistory import KeyStatement, key_for_size, statement_bytes, verify_key_history

ORIGIN = "chartledger.local/5d0c7a4e-2f1b-4e6a-9c3d-8b7a6f5e4d3c"
TIME = "2026-11-25T06:45:05.123456Z"
KEYS = [SigningKey.generate() for _ in range(4)]
K0, K1, K2, STRANGER = KEYS
FROM_SIZES = [0, 10, 20]

Row = tuple[int, bytes, bytes, bytes | None]


def statement(seq: int, **changes: Any) -> KeyStatement:
    key = KEYS[seq]
    fields: dict[str, Any] = {
        "seq": seq,
        "key_id": key.key_id,
        "public_key": key.public_key,
        "previous": KEYS[seq - 1].key_id if seq else None,
        "from_size": FROM_SIZES[seq],
        "time": TIME,
        "origin": ORIGIN,
    }
    fields.update(changes)
    return KeyStatement(**fields)


def row(
    s: KeyStatement,
    *,
    row_seq: int | None = None,
    signer: SigningKey | None = None,
    previous_signer: SigningKey | str | None = "default",
) -> Row:
    """A ``ledger_keys`` row: signed by the statement's own key and (for seq > 0) the one before."""
    data = statement_bytes(s)
    own = signer or next(k for k in KEYS if k.public_key == s.public_key)
    if previous_signer == "default":
        previous_signer = KEYS[s.seq - 1] if s.seq > 0 else None
    prev_signature = None if previous_signer is None else previous_signer.sign(data)  # type: ignore[union-attr]
    return (s.seq if row_seq is None else row_seq, data, own.sign(data), prev_signature)


def valid_rows() -> list[Row]:
    return [row(statement(i)) for i in range(3)]


def short(key: SigningKey) -> str:
    return key.key_id[:16] + "…"


# --- the statement bytes -----------------------------------------------------------------------


def test_a_statement_is_the_canonical_map_of_section_9() -> None:
    s = statement(1)
    assert statement_bytes(s) == encode(
        {
            "seq": 1,
            "time": TIME,
            "format": 1,
            "key_id": K1.key_id,
            "origin": ORIGIN,
            "previous": K0.key_id,
            "from_size": 10,
            "public_key": K1.public_key,
        }
    )
    # Shown in canonical order in §9: seq, time, format, key_id, origin, previous, ...
    assert statement_bytes(s)[1:5] == b"\xa3seq"


# --- a valid history ---------------------------------------------------------------------------


def test_a_chain_of_three_keys_each_signed_by_the_one_before_is_accepted() -> None:
    assert verify_key_history(valid_rows()) == [statement(0), statement(1), statement(2)]


def test_a_chain_starting_at_the_trusted_key_is_accepted() -> None:
    assert len(verify_key_history(valid_rows(), trusted_key=K0.key_id)) == 3


def test_the_genesis_statement_alone_is_a_history() -> None:
    assert verify_key_history([row(statement(0))]) == [statement(0)]


def test_rows_may_hold_memoryviews_as_a_database_returns_them() -> None:
    rows = [
        (seq, memoryview(d), memoryview(s), p and memoryview(p)) for seq, d, s, p in valid_rows()
    ]
    assert len(verify_key_history(rows)) == 3  # type: ignore[arg-type]


# --- invalid histories -------------------------------------------------------------------------


def test_an_empty_history_is_refused() -> None:
    with pytest.raises(ChainBroken, match=r"^the key history is empty$"):
        verify_key_history([])


def test_statement_1_signed_by_another_key_than_key_0_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1), previous_signer=STRANGER)
    with pytest.raises(
        SignatureInvalid, match=rf"^key statement 1: signature is invalid for key {short(K0)}$"
    ):
        verify_key_history(rows)


def test_statement_1_signed_only_by_itself_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1), previous_signer=None)
    with pytest.raises(ChainBroken, match=r"^key statement 1: not signed by the previous key$"):
        verify_key_history(rows)


def test_statement_1_signed_by_itself_in_place_of_key_0_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1), previous_signer=K1)
    with pytest.raises(SignatureInvalid, match=rf"signature is invalid for key {short(K0)}$"):
        verify_key_history(rows)


def test_a_statement_not_signed_by_its_own_key_is_refused() -> None:
    rows = valid_rows()
    rows[2] = row(statement(2), signer=K1)  # K1 may authorise K2 but cannot prove possession
    with pytest.raises(
        SignatureInvalid, match=rf"^key statement 2: signature is invalid for key {short(K2)}$"
    ):
        verify_key_history(rows)


def test_a_genesis_statement_not_signed_by_its_own_key_is_refused() -> None:
    with pytest.raises(SignatureInvalid, match=rf"^key statement 0: .* for key {short(K0)}$"):
        verify_key_history([row(statement(0), signer=STRANGER)])


def test_a_statement_whose_previous_points_elsewhere_is_refused() -> None:
    rows = valid_rows()
    rows[2] = row(statement(2, previous=K0.key_id))
    with pytest.raises(
        ChainBroken, match=rf"^key statement 2: previous is {short(K0)}, expected {short(K1)}$"
    ):
        verify_key_history(rows)


def test_a_rotation_statement_without_a_previous_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1, previous=None))
    with pytest.raises(
        ChainBroken, match=rf"^key statement 1: previous is None…, expected {short(K0)}$"
    ):
        verify_key_history(rows)


@pytest.mark.parametrize("from_size", [10, 9, 0])
def test_a_from_size_that_does_not_increase_is_refused(from_size: int) -> None:
    rows = valid_rows()
    rows[2] = row(statement(2, from_size=from_size))
    with pytest.raises(
        ChainBroken, match=rf"^key statement 2: from_size {from_size} does not increase$"
    ):
        verify_key_history(rows)


def test_a_gap_in_the_sequence_is_refused() -> None:
    rows = [valid_rows()[0], row(statement(2, previous=K0.key_id))]
    with pytest.raises(ChainBroken, match=r"^key statement 2: has seq 2, expected 1$"):
        verify_key_history(rows)


def test_a_repeated_statement_is_refused() -> None:
    rows = valid_rows()
    with pytest.raises(ChainBroken, match=r"^key statement 1: has seq 1, expected 2$"):
        verify_key_history([rows[0], rows[1], rows[1]])


def test_a_row_whose_seq_disagrees_with_its_statement_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1), row_seq=2)
    # The row is numbered 2 but holds statement 1 (the message names the statement's seq).
    with pytest.raises(ChainBroken, match=r"^key statement 2: has seq 1, expected "):
        verify_key_history(rows)


def test_a_history_not_starting_at_seq_0_is_refused() -> None:
    with pytest.raises(ChainBroken, match=r"^key statement 1: has seq 1, expected 0$"):
        verify_key_history(valid_rows()[1:])


@pytest.mark.parametrize("from_size", [1, 10])
def test_a_genesis_statement_with_from_size_above_0_is_refused(from_size: int) -> None:
    with pytest.raises(
        ChainBroken,
        match=r"^key statement 0: the first key must have no previous and from_size 0$",
    ):
        verify_key_history([row(statement(0, from_size=from_size))])


def test_a_genesis_statement_with_a_previous_key_is_refused() -> None:
    with pytest.raises(ChainBroken, match=r"^key statement 0: the first key must have no previous"):
        verify_key_history([row(statement(0, previous=STRANGER.key_id))])


def test_a_history_starting_at_another_key_than_the_trusted_one_is_refused() -> None:
    with pytest.raises(
        UnknownKey,
        match=rf"^key statement 0: first key is {short(K0)}, trusted key is {short(STRANGER)}$",
    ):
        verify_key_history(valid_rows(), trusted_key=STRANGER.key_id)


def test_a_key_id_that_is_not_the_hash_of_its_public_key_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1, key_id=STRANGER.key_id))
    with pytest.raises(
        MalformedInput, match=r"^key statement 1: key_id does not match its public key$"
    ):
        verify_key_history(rows)


def test_a_change_of_origin_is_refused() -> None:
    rows = valid_rows()
    rows[1] = row(statement(1, origin="chartledger.local/other"))
    with pytest.raises(ChainBroken, match=rf"^key statement 1: origin changed from '{ORIGIN}'$"):
        verify_key_history(rows)


def test_a_statement_changed_after_signing_is_refused() -> None:
    rows = valid_rows()
    seq, _, own, prev = rows[1]
    altered = statement_bytes(statement(1, from_size=11))
    with pytest.raises(SignatureInvalid, match=rf"^key statement 1: .* for key {short(K1)}$"):
        verify_key_history([rows[0], (seq, altered, own, prev), rows[2]])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": 2}, "^key statement does not have the keys of format 1$"),
        ({"format": True}, "^key statement does not have the keys of format 1$"),
        ({"format": "1"}, "^key statement does not have the keys of format 1$"),
        ({"origin": 5}, "^key statement origin must be text"),
        ({"origin": b"chartledger.local/x"}, "^key statement origin must be text"),
        ({"extra": 1}, "^key statement does not have the keys of format 1$"),
        ({"public_key": K0.public_key[:31]}, "^key statement public_key must be 32 bytes$"),
        ({"seq": -1}, "^key statement seq must be a non-negative integer$"),
        ({"from_size": "0"}, "^key statement from_size must be a non-negative integer$"),
        ({"time": "2026-11-25T06:45:05Z"}, "^not a timestamp of the form"),
    ],
)
def test_a_malformed_statement_is_refused(changes: dict[str, Any], message: str) -> None:
    fields = {
        "seq": 0,
        "time": TIME,
        "format": 1,
        "key_id": K0.key_id,
        "origin": ORIGIN,
        "previous": None,
        "from_size": 0,
        "public_key": K0.public_key,
        **changes,
    }
    data = encode(fields)
    with pytest.raises(MalformedInput, match=message):
        verify_key_history([(0, data, K0.sign(data), None)])


def test_a_statement_in_non_canonical_bytes_is_refused() -> None:
    data = statement_bytes(statement(0))
    wide = data.replace(b"\xa3seq\x00", b"\xa3seq\xcc\x00")
    assert wide != data
    with pytest.raises(MalformedInput, match=r"not the canonical encoding"):
        verify_key_history([(0, wide, K0.sign(wide), None)])


# --- the key in force --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "seq"),
    [(0, 0), (1, 0), (9, 0), (10, 1), (11, 1), (19, 1), (20, 2), (21, 2), (10**9, 2)],
)
def test_the_key_in_force_is_the_one_with_the_greatest_from_size_not_above_the_size(
    size: int, seq: int
) -> None:
    assert key_for_size(verify_key_history(valid_rows()), size) == statement(seq)
