"""Tampering with a live store, as its owner can (triggers bypassed), is found by both checks.

Each case edits the raw tables of a practice whose 40 events are covered by a checkpoint
(tests/tamper/conftest.py), then runs ``chartledger verify`` and ``python -m verify store``:
both must exit 1 and print a ``FAIL:`` line naming the tampered position, checkpoint size or
key history (docs/LEDGER_FORMAT.md §10).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from api.cli import main as chartledger
from domain.notes import Note
from domain.patients import Patient
from events.checkpoints import latest_checkpoint
from events.config import StoreConfig
from events.heads import head_row
from events.keys import SigningKey
from events.ledger import Ledger
from events.log import inclusion_proof, iter_leaves, subject_heads_root
from events.rotation import rotate_signing_key
from events.sealing import SealError, seal
from events.tiles import TileMismatch
from legal_hold.retention import Policy, dispose
from tests.support import Chart, init_practice, patient, set_env
from tests.tamper.conftest import CHECKPOINT, EVENTS, LINK_TABLES, Attacker, Verdict
from verify.canonical import decode, encode, format_timestamp
from verify.checkpoint import format_body, format_note, parse_note
from verify.errors import ProofInvalid
from verify.heads import LATEST
from verify.keyhistory import KeyStatement, parse_statement, statement_bytes
from verify.merkle import leaf_hash, root_hash, verify_inclusion

CHECKPOINT_AT = f"checkpoint at size {CHECKPOINT}"


def flip(data: bytes, index: int) -> bytes:
    """``data`` with every bit of one byte inverted."""
    changed = bytearray(data)
    changed[index] ^= 0xFF
    return bytes(changed)


def assert_fails(verdict: Verdict, *where: str, because: str = "") -> None:
    """Exit status 1 and a FAIL line for each place; the first one says ``because``."""
    assert verdict.code == 1, verdict.out
    for line in verdict.out.splitlines():  # each line names its place once
        assert not re.match(r"FAIL: (\S+ \S+ \S+ \d+|\S+ \d+): \1:", line), line
    for i, place in enumerate(where):
        reason = because if i == 0 else ""
        assert verdict.fails_at(place, reason), (
            f"no 'FAIL: {place}: ...{reason}...' line in:\n{verdict.out}"
        )


def assert_both_fail(
    attacker: Attacker, *where: str, because: str = "", extra: tuple[str, ...] = ()
) -> None:
    """``chartledger verify`` and ``python -m verify store`` both refuse the store, alike."""
    keyed, keyless = attacker.both(*extra)
    assert_fails(keyed, *where, because=because)
    assert_fails(keyless, *where, because=because)


def middle(attacker: Attacker) -> int:
    """A position well inside the log and inside the checkpoint: the second patient's 4th event."""
    return attacker.of_patient(1)[3].position


# -- the fixture itself ---------------------------------------------------------------------


def test_the_untampered_store_verifies_on_both_paths(attacker: Attacker) -> None:
    keyed, keyless = attacker.both()
    assert keyed.code == 0, keyed.out
    assert keyless.code == 0, keyless.out
    assert "FAIL" not in keyed.out + keyless.out
    leaves = f"{CHECKPOINT} leaves, {CHECKPOINT} events, 2 checkpoints, 1 keys"
    assert leaves in keyed.out and leaves in keyless.out
    assert f"payloads: {CHECKPOINT} opened and matching their commitments" in keyed.out
    # and with the genesis key pinned, as a careful verifier runs it
    keyed, keyless = attacker.both("--trusted-key", attacker.key_id)
    assert (keyed.code, keyless.code) == (0, 0), keyed.out + keyless.out


def test_the_fixture_interleaves_several_events_per_patient(attacker: Attacker) -> None:
    assert len(attacker.events) == EVENTS
    first = attacker.of_patient(0)
    assert len(first) >= 5
    assert [e.version for e in first] == list(range(1, len(first) + 1))
    # interleaved: another patient's event between each two of this patient's
    assert all(b.position - a.position > 1 for a, b in itertools.pairwise(first))
    assert max(e.position for e in attacker.events) == CHECKPOINT - 1


# -- 1. a sealed payload --------------------------------------------------------------------


def test_one_byte_of_a_sealed_payload_changed_and_re_encoded_is_found(
    attacker: Attacker,
) -> None:
    position = middle(attacker)
    record = attacker.record(position)
    record["sealed"] = flip(record["sealed"], 20)
    attacker.set_state(position, encode(record))
    assert_both_fail(attacker, f"position {position}", because="sealed payload hashes to")


def test_one_raw_byte_flipped_inside_the_sealed_bin_is_found(attacker: Attacker) -> None:
    position = middle(attacker)
    state = attacker.state(position)
    sealed = attacker.record(position)["sealed"]
    offset = len(state) - len(sealed) + 20  # the sealed bin is the record's last value
    assert state[offset] == sealed[20]
    attacker.set_state(position, flip(state, offset))
    assert_both_fail(attacker, f"position {position}", because="sealed payload hashes to")


# -- 2. a header ----------------------------------------------------------------------------


def test_one_byte_of_a_header_changed_is_found(attacker: Attacker) -> None:
    position = middle(attacker)
    record = attacker.record(position)
    header = decode(record["header"])
    recorded = header["recorded"]
    digit = str((int(recorded[-2]) + 1) % 10)
    header["recorded"] = recorded[:-2] + digit + "Z"  # a microsecond later, still canonical
    record["header"] = encode(header)
    forged = encode(record)
    original = attacker.state(position)
    assert len(forged) == len(original)
    assert sum(a != b for a, b in zip(forged, original, strict=True)) == 1
    attacker.set_state(position, forged)
    assert_both_fail(attacker, f"position {position}", because="leaf commits to event")


# -- 3. a leaf ------------------------------------------------------------------------------


def test_one_byte_of_a_leafs_event_digest_changed_is_found(attacker: Attacker) -> None:
    position = middle(attacker)
    leaf = decode(attacker.leaf(position))
    leaf["event"] = flip(leaf["event"], 0)
    attacker.set_leaf(position, encode(leaf))
    assert_both_fail(
        attacker, f"position {position}", CHECKPOINT_AT, because="leaf commits to event"
    )


def test_a_leafs_prev_pointer_changed_and_re_encoded_is_found(attacker: Attacker) -> None:
    events = attacker.of_patient(1)
    position = events[3].position
    leaf = decode(attacker.leaf(position))
    subject, seq, prev = leaf["links"][0]
    assert (seq, prev) == (4, events[2].position)
    leaf["links"][0] = [subject, seq, events[1].position]  # skip one of the patient's events
    attacker.set_leaf(position, encode(leaf))
    assert_both_fail(attacker, f"position {position}", CHECKPOINT_AT, because="link for patient:")


# -- 4. a deletion --------------------------------------------------------------------------


def test_one_event_deleted_with_its_leaf_and_links_is_found(attacker: Attacker) -> None:
    position = middle(attacker)
    attacker.delete_event(position)
    assert attacker.rows("SELECT COUNT(*) FROM ledger_links WHERE position = ?", (position,)) == [
        (0,)
    ]
    assert_both_fail(attacker, f"position {position}", CHECKPOINT_AT, because="are missing")


# -- 5. the tip rewritten -------------------------------------------------------------------


def test_the_newest_events_deleted_and_rewritten_consistently_are_found_by_the_checkpoint(
    attacker: Attacker,
) -> None:
    newest = attacker.events[-3:]
    for event in newest:
        attacker.delete_event(event.position)
    # A consistent rewrite: the same streams and versions, other content, sealed, hashed,
    # linked and logged by the application itself (the forger holds the practice's keys).
    with attacker.ledger() as ledger:
        for event in newest:
            chart = ledger.repository.get(event.stream)
            assert chart.version == event.version - 1
            chart.note(subjects=(event.patient,), text="forged")
            ledger.save(chart)
    rows = attacker.rows("SELECT position, version FROM ledger_leaves ORDER BY position")
    assert rows[-3:] == [(e.position, e.version) for e in newest]
    keyed, keyless = attacker.both()
    for verdict in (keyed, keyless):
        assert_fails(verdict, CHECKPOINT_AT, because="root is")
        # every event on its own is sound: only the checkpoint can tell
        assert not any(verdict.fails_at(f"position {e.position}") for e in newest)


# -- 6. a swap ------------------------------------------------------------------------------


def test_two_events_of_one_patient_with_their_states_swapped_are_found(
    attacker: Attacker,
) -> None:
    events = attacker.of_patient(1)
    a, b = events[2].position, events[5].position
    state_a, state_b = attacker.state(a), attacker.state(b)
    attacker.set_state(a, state_b)
    attacker.set_state(b, state_a)
    assert_both_fail(attacker, f"position {a}", f"position {b}", because="header names")


def test_two_leaves_with_their_positions_swapped_are_found(attacker: Attacker) -> None:
    events = attacker.of_patient(1)
    a, b = events[2].position, events[5].position
    swap = "UPDATE ledger_leaves SET position = ? WHERE position = ?"
    attacker.execute(swap, (-1, a))
    attacker.execute(swap, (a, b))
    attacker.execute(swap, (b, -1))
    assert_both_fail(
        attacker,
        f"position {a}",
        f"position {b}",
        CHECKPOINT_AT,
        because="the event row says position",
    )


def test_the_last_two_events_moved_with_their_leaves_and_links_are_found_by_the_checkpoint(
    attacker: Attacker,
) -> None:
    # Two patients' newest events, adjacent, swapped everywhere they are named: each chain
    # still reads [#n, prev p] in order, so only the Merkle root and the heads betray it.
    a, b = attacker.events[-2], attacker.events[-1]
    assert a.patient != b.patient
    for table in ("ledger_leaves", "stored_events", *LINK_TABLES):
        move = f"UPDATE {table} SET position = ? WHERE position = ?"
        attacker.execute(move, (-1, a.position))
        attacker.execute(move, (a.position, b.position))
        attacker.execute(move, (b.position, -1))
    assert_both_fail(attacker, CHECKPOINT_AT, because="root is")


# -- 7. an insertion ------------------------------------------------------------------------


def _insert_event(
    attacker: Attacker, stream: uuid.UUID, version: int, topic: str, state: bytes, position: int
) -> None:
    attacker.execute(
        "INSERT INTO stored_events (originator_id, originator_version, topic, state, position) "
        "VALUES (?, ?, ?, ?, ?)",
        (attacker.stream(stream), version, topic, state, position),
    )


def _topic(attacker: Attacker, position: int) -> str:
    ((topic,),) = attacker.rows("SELECT topic FROM stored_events WHERE position = ?", (position,))
    return str(topic)


def test_a_stored_event_without_its_leaf_is_found(attacker: Attacker) -> None:
    copied = attacker.of_patient(0)[2].position
    stream = uuid.uuid4()
    _insert_event(attacker, stream, 1, _topic(attacker, copied), attacker.state(copied), CHECKPOINT)
    assert_both_fail(attacker, f"event {stream.hex} v1", because="stored event has no leaf")


def test_a_forged_event_inserted_in_the_middle_is_found(attacker: Attacker) -> None:
    position = middle(attacker)
    copied = attacker.of_patient(0)[1].position
    state, leaf, topic = attacker.state(copied), attacker.leaf(copied), _topic(attacker, copied)
    # Make room: every later leaf, event and link moves up by one (via negatives, so that
    # no primary key ever collides midway).
    for table in ("ledger_leaves", "stored_events", *LINK_TABLES):
        attacker.execute(
            f"UPDATE {table} SET position = -position - 1 WHERE position >= ?", (position,)
        )
        attacker.execute(f"UPDATE {table} SET position = -position WHERE position < 0")
    stream = uuid.uuid4()
    attacker.execute(
        "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
        (position, attacker.stream(stream), 1, leaf),
    )
    _insert_event(attacker, stream, 1, topic, state, position)
    ((size,),) = attacker.rows("SELECT MAX(position) + 1 FROM ledger_leaves")
    assert size == CHECKPOINT + 1
    assert_both_fail(attacker, f"position {position}", CHECKPOINT_AT, because="header names")


@pytest.mark.parametrize("key_name", ["the subject's own", "made up"])
def test_a_forged_event_at_the_tip_sealed_under_another_key_is_found_by_chartledger_verify(
    attacker: Attacker, key_name: str
) -> None:
    # The forger has the database but not the master key: the leaf, links and header are all
    # computed correctly, only the payload is sealed under a data key of the forger's own.
    subject = attacker.events[0].patient
    ((seq, prev),) = attacker.rows(
        "SELECT MAX(seq), MAX(position) FROM ledger_links WHERE subject = ?", (subject,)
    )
    stream, position, topic = uuid.uuid4(), CHECKPOINT, "tests.support:Chart.Opened"
    payload = encode(
        {
            "text": "forged",
            "subjects": {"_data_": [subject], "_type_": "tuple"},
            "originator_topic": "tests.support:Chart",
        }
    )
    bound, sealed = seal(os.urandom(32), str(stream), 1, payload)
    if key_name == "made up":  # so the payload would pass for one whose key was disposed of
        name = f"{subject}#{os.urandom(16).hex()}"
    else:
        ((name,),) = attacker.rows(
            "SELECT name FROM ledger_data_keys WHERE subject = ?", (subject,)
        )
    header = encode(
        {
            "key": name,
            "type": topic,
            "actor": None,
            "format": 1,
            "sealed": hashlib.sha256(sealed).digest(),
            "stream": str(stream),
            "session": None,
            "version": 1,
            "original": None,
            "recorded": format_timestamp(datetime.now(UTC)),
            "subjects": [subject],
            "commitment": bound,
        }
    )
    leaf = encode({"event": hashlib.sha256(header).digest(), "links": [[subject, seq + 1, prev]]})
    attacker.execute(
        "INSERT INTO ledger_leaves (position, stream, version, leaf) VALUES (?, ?, ?, ?)",
        (position, attacker.stream(stream), 1, leaf),
    )
    attacker.execute(
        f"INSERT INTO {attacker.links_table} (subject, seq, position) VALUES (?, ?, ?)",
        (subject, seq + 1, position),
    )
    _insert_event(
        attacker, stream, 1, topic, encode({"header": header, "sealed": sealed}), position
    )
    keyed = attacker.chartledger_verify()
    because = "does not open" if key_name != "made up" else "data key this practice never made"
    assert_fails(keyed, f"position {position}", because=because)
    # `python -m verify store` has no keys and no checkpoint covers the new tip, so by design
    # (LEDGER_FORMAT.md §10, last paragraph) it cannot tell; it is not asserted on here.


# -- 8. checkpoints -------------------------------------------------------------------------


def test_a_checkpoints_root_replaced_is_found(attacker: Attacker) -> None:
    note = attacker.note(CHECKPOINT).decode()
    lines = note.split("\n")
    other = base64.b64encode(hashlib.sha256(b"another tree").digest()).decode()
    assert lines[2] != other and len(lines[2]) == len(other)
    lines[2] = other
    attacker.set_note(CHECKPOINT, "\n".join(lines).encode())
    assert_both_fail(attacker, CHECKPOINT_AT, because="signature is invalid")


def test_a_checkpoints_signature_replaced_by_another_keys_is_found(attacker: Attacker) -> None:
    checkpoint = parse_note(attacker.note(CHECKPOINT))
    ((_, key_hash, _),) = checkpoint.signatures
    forger = SigningKey.generate()
    note = format_note(checkpoint.body, checkpoint.origin, key_hash, forger.sign(checkpoint.body))
    attacker.set_note(CHECKPOINT, note)
    assert_both_fail(attacker, CHECKPOINT_AT, because="signature is invalid")


def test_a_checkpoint_re_signed_whole_by_another_key_is_found(attacker: Attacker) -> None:
    checkpoint = parse_note(attacker.note(CHECKPOINT))
    forger = SigningKey.generate()
    body = checkpoint.body.replace(checkpoint.key_id.encode(), forger.key_id.encode())
    key_hash = forger.note_key_hash(checkpoint.origin)
    note = format_note(body, checkpoint.origin, key_hash, forger.sign(body))
    attacker.set_note(CHECKPOINT, note)
    assert_both_fail(attacker, CHECKPOINT_AT, because="names key")


def test_a_checkpoint_copied_from_another_practices_log_is_found(
    attacker: Attacker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = StoreConfig(home=tmp_path / "other-practice")
    init_practice(other, monkeypatch)
    size = 21
    ledger = Ledger(other, every_events=10**9, every_seconds=10**9)
    try:
        ledger.save(*[Chart(subjects=(patient(),), text="elsewhere") for _ in range(size - 1)])
        copied = ledger.checkpointer.issue()
        note = _note_of(ledger, size)
    finally:
        ledger.close()
    set_env(attacker.config, monkeypatch)
    assert copied.size == size
    assert not attacker.rows("SELECT size FROM ledger_checkpoints WHERE size = ?", (size,))
    attacker.execute("INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)", (size, note))
    assert_both_fail(attacker, f"checkpoint at size {size}", because="origin is")


def _note_of(ledger: Ledger, size: int) -> bytes:
    with ledger.db.read() as c:
        c.execute("SELECT note FROM ledger_checkpoints WHERE size = ?", (size,))
        row = c.fetchone()
    assert row is not None
    return bytes(row[0])


# -- 9. the key history ---------------------------------------------------------------------


def _forged_statement(attacker: Attacker, seq: int) -> tuple[bytes, bytes, SigningKey]:
    """Key statement ``seq`` as it stands, but for a key of the attacker's, self-signed."""
    ((data,),) = attacker.rows("SELECT statement FROM ledger_keys WHERE seq = ?", (seq,))
    real = parse_statement(bytes(data))
    forger = SigningKey.generate()
    forged = statement_bytes(
        KeyStatement(
            seq=real.seq,
            key_id=forger.key_id,
            public_key=forger.public_key,
            previous=real.previous,
            from_size=real.from_size,
            time=real.time,
            origin=real.origin,
        )
    )
    return forged, forger.sign(forged), forger


def test_a_rotated_key_statement_replaced_by_an_attackers_key_is_found(
    attacker: Attacker,
) -> None:
    with attacker.ledger() as ledger:
        rotate_signing_key(ledger)
        ledger.checkpointer.issue()
    assert attacker.both()[1].code == 0  # the rotation itself is sound
    forged, signature, forger = _forged_statement(attacker, 1)
    attacker.execute(
        "UPDATE ledger_keys SET statement = ?, signature_self = ?, signature_prev = ? "
        "WHERE seq = 1",
        (forged, signature, forger.sign(forged)),
    )
    assert_both_fail(attacker, "key history", because="signature is invalid")


def test_the_genesis_key_statement_replaced_by_an_attackers_key_is_found(
    attacker: Attacker,
) -> None:
    forged, signature, _ = _forged_statement(attacker, 0)
    attacker.execute(
        "UPDATE ledger_keys SET statement = ?, signature_self = ? WHERE seq = 0",
        (forged, signature),
    )
    # Pinned to the published key id, both name the key history itself.
    assert_both_fail(
        attacker, "key history", because="first key is", extra=("--trusted-key", attacker.key_id)
    )
    # Unpinned, the history is self-consistent; the checkpoints signed by the real key are not.
    assert_fails(
        attacker.store_verify(), "checkpoint at size 1", CHECKPOINT_AT, because="names key"
    )
    # `chartledger verify` pins the history to the practice's own first key by default.
    assert_fails(attacker.chartledger_verify(), "key history", because="first key is")


def test_the_signing_key_swapped_to_hide_deleted_events_is_found_by_chartledger_verify(
    attacker: Attacker,
) -> None:
    # A database-only attacker (no master key, no signing key) deletes the three newest events,
    # swaps the genesis key statement for a key of their own, and re-signs every checkpoint
    # over the shortened log with it. Every remaining event, leaf, link and payload is genuine.
    # The practice's keys folder still holds the real signing key, so `chartledger verify`,
    # which runs with those keys, is in a position to refuse the substitute key history.
    forged, signature, forger = _forged_statement(attacker, 0)
    attacker.execute(
        "UPDATE ledger_keys SET statement = ?, signature_self = ? WHERE seq = 0",
        (forged, signature),
    )
    for event in attacker.events[-3:]:
        attacker.delete_event(event.position)
    size = CHECKPOINT - 3
    old = parse_note(attacker.note(CHECKPOINT))
    attacker.execute("DELETE FROM ledger_checkpoints WHERE size = ?", (CHECKPOINT,))
    links = attacker.rows(
        "SELECT subject, MAX(seq), MAX(position) FROM ledger_links GROUP BY subject"
    )
    heads = sorted(((str(s), n, p) for s, n, p in links), key=lambda h: h[0].encode())
    root = root_hash([attacker.leaf(position) for position in range(size)])
    body = format_body(old.origin, size, root, subject_heads_root(heads), old.time, forger.key_id)
    key_hash = forger.note_key_hash(old.origin)
    attacker.execute(
        "INSERT INTO ledger_checkpoints (size, note) VALUES (?, ?)",
        (size, format_note(body, old.origin, key_hash, forger.sign(body))),
    )
    first = parse_note(attacker.note(1))
    body = first.body.replace(attacker.key_id.encode(), forger.key_id.encode())
    attacker.set_note(1, format_note(body, first.origin, key_hash, forger.sign(body)))

    # Pinned to the published key id, as §9 advises, the keyless check refuses it.
    assert_fails(
        attacker.store_verify("--trusted-key", attacker.key_id),
        "key history",
        because="first key is",
    )
    # `chartledger verify` knows the practice's first key id, so it refuses the swap unasked.
    assert_fails(attacker.chartledger_verify(), "key history", because="first key is")


# -- 10. the links index --------------------------------------------------------------------

LINKS_INDEX = "ledger_links"


def _links(attacker: Attacker, position: int) -> list[tuple[str, int, int]]:
    rows = attacker.rows(
        "SELECT subject, seq, position FROM ledger_links WHERE position = ?", (position,)
    )
    return [(str(s), int(n), int(p)) for s, n, p in rows]


@pytest.mark.parametrize("table", LINK_TABLES)
@pytest.mark.parametrize("edit", ["moved", "renumbered", "deleted", "added"])
def test_one_row_of_the_links_index_changed_is_found(
    attacker: Attacker, edit: str, table: str
) -> None:
    position = middle(attacker)
    ((subject, _, _),) = _links(attacker, position)
    _move_links(attacker, to=table)  # both tables may hold links (LEDGER_FORMAT.md §11)
    if edit == "moved":
        attacker.execute(f"UPDATE {table} SET position = ? WHERE position = ?", (3, position))
    elif edit == "renumbered":
        attacker.execute(f"UPDATE {table} SET seq = 99 WHERE position = ?", (position,))
    elif edit == "deleted":
        attacker.execute(f"DELETE FROM {table} WHERE position = ?", (position,))
    else:  # a link no leaf carries
        attacker.execute(f"INSERT INTO {table} VALUES (?, ?, ?)", (subject, 99, position))
    assert_both_fail(attacker, LINKS_INDEX, because="does not hold exactly the links")


def _move_links(attacker: Attacker, to: str) -> None:
    """Every link into table ``to``, as a merge would (SQLite) or as a store could hold them,
    with the stored heads what the writer keeps for that layout (each subject's newest settled
    link: none when every link is recent); a valid store either way."""
    (away,) = [t for t in LINK_TABLES if t != to]
    attacker.execute(f"INSERT INTO {to} SELECT subject, seq, position FROM {away}")
    attacker.execute(f"DELETE FROM {away}")
    attacker.execute("DELETE FROM ledger_heads")
    for row in attacker.rows(LATEST):
        attacker.execute(
            "INSERT INTO ledger_heads (subject, seq, position, hash) VALUES (?, ?, ?, ?)",
            head_row(*row),
        )
    assert attacker.rows(f"SELECT COUNT(*) FROM {away}") == [(0,)]
    verdict = attacker.store_verify()
    assert verdict.code == 0, verdict.out


def test_a_link_in_both_tables_is_found(attacker: Attacker) -> None:
    # A merge that copied the links into main but never deleted them from recent: each link is
    # then read twice through the view.
    (other,) = [t for t in LINK_TABLES if t != attacker.links_table]
    attacker.execute(f"INSERT INTO {other} SELECT * FROM {attacker.links_table}")
    assert_both_fail(attacker, LINKS_INDEX, because="does not hold exactly the links")


def test_two_rows_of_the_links_index_spelt_as_one_are_found(attacker: Attacker) -> None:
    # One row whose subject holds the separator that joins the index's rows when it is read
    # reads as the two rows it replaced; only their count gives it away.
    a, b = middle(attacker), middle(attacker) + 1
    ((subject_a, seq_a, _),), ((subject_b, seq_b, _),) = _links(attacker, a), _links(attacker, b)
    table = attacker.links_table
    for position in (a, b):
        attacker.execute(f"DELETE FROM {table} WHERE position = ?", (position,))
    merged = f"{subject_a}\n{seq_a}\n{a}\x1e{subject_b}"
    attacker.execute(f"INSERT INTO {table} VALUES (?, ?, ?)", (merged, seq_b, b))
    assert_both_fail(attacker, LINKS_INDEX, because="does not hold exactly the links")


# -- 11. data keys (LEDGER_FORMAT.md §4.3) ----------------------------------------------------
#
# Only `chartledger verify` holds the master key, so only it can tell a key that unwraps from
# one that does not, or a key disposed of from one deleted: `python -m verify store` does not
# read the data keys at all, and is not asserted on here.

LATER = datetime.now(UTC) + timedelta(days=8 * 366)  # past every adult's retention
POLICY = Policy.simple("adults-7y", adult_years=7, minor_years=3)


def _data_keys(attacker: Attacker) -> dict[str, tuple[str, bytes]]:
    """name → (subject, wrapped) of every data key the store holds."""
    rows = attacker.rows("SELECT name, subject, wrapped FROM ledger_data_keys")
    return {str(n): (str(s), bytes(w)) for n, s, w in rows}


def _key_of(attacker: Attacker, subject: str) -> str:
    ((name,),) = attacker.rows("SELECT name FROM ledger_data_keys WHERE subject = ?", (subject,))
    return str(name)


def _payloads(verdict: Verdict) -> tuple[int, int]:
    """(opened, disposed), as `chartledger verify` counted them."""
    found = re.search(r"^payloads: (\d+) opened .*, (\d+) disposed$", verdict.out, re.M)
    assert found, verdict.out
    return int(found[1]), int(found[2])


def _registered_patient(ledger: Ledger) -> uuid.UUID:
    """A patient the retention policy can assess: registered with a birth date, one note."""
    registered = Patient.register(
        mrn=f"MRN-{uuid.uuid4().hex[:6]}",
        given_name="Ada",
        family_name="Example",
        birth_date=date(1970, 5, 1),
        sex="female",
    )
    note = Note.draft(patient_id=registered.id, author_id=uuid.uuid4(), kind="progress", text="HX")
    ledger.save(registered, note)
    return registered.id


def _swap_subjects(attacker: Attacker, a: str, b: str) -> None:
    """The data keys of subjects ``a`` and ``b`` trade owners (via a third name, so that the
    one-key-per-subject constraint holds at every step)."""
    move = "UPDATE ledger_data_keys SET subject = ? WHERE subject = ?"
    attacker.execute(move, ("patient:swapping", a))
    attacker.execute(move, (a, b))
    attacker.execute(move, (b, "patient:swapping"))


def test_a_data_key_moved_to_another_patient_is_found_and_disposal_still_destroys_it(
    attacker: Attacker,
) -> None:
    with attacker.ledger() as ledger:
        real = _registered_patient(ledger)
    subject, other = f"patient:{real}", attacker.events[0].patient
    name, others = _key_of(attacker, subject), _key_of(attacker, other)
    _swap_subjects(attacker, subject, other)

    keyed = attacker.chartledger_verify()
    assert_fails(keyed, f"data key {name}", because=f"its subject is {other}, but its name says")
    assert keyed.fails_at(f"data key {others}", f"its subject is {subject}")

    with attacker.ledger() as ledger:
        # The application will not seal the patient's next event under the other patient's
        # key now in its row (it would outlive this patient's disposal).
        with pytest.raises(SealError, match="is another owner's: refused"):
            ledger.save(Note.draft(patient_id=real, author_id=uuid.uuid4(), kind="x", text="y"))
        # The disposal finds the patient's key by its name, wherever its row was moved.
        disposal = dispose(ledger, real, policy=POLICY, by=uuid.uuid4(), at=LATER)
        assert disposal.key_names == [name]
        assert name not in _data_keys(attacker) and others in _data_keys(attacker)
        ledger.data_keys.forget(name)
        with pytest.raises(LookupError):  # the patient's records are unreadable for good
            ledger.repository.get(real)
    # Disposed of properly: only the other patient's misplaced key still FAILs.
    keyed = attacker.chartledger_verify()
    assert_fails(keyed, f"data key {others}", because=f"its subject is {subject}")
    assert not keyed.fails_at(f"data key {name}")


def test_the_practices_data_key_deleted_is_found_not_counted_as_disposed(
    attacker: Attacker,
) -> None:
    name = _key_of(attacker, "practice")
    attacker.execute("DELETE FROM ledger_data_keys WHERE subject = 'practice'")
    keyed = attacker.chartledger_verify()
    assert_fails(keyed, f"data key {name}", because="the practice's own data key is never disposed")
    assert _payloads(keyed)[1] == 0


def test_every_data_key_deleted_is_found_key_by_key_not_counted_as_disposed(
    attacker: Attacker,
) -> None:
    names = sorted(_data_keys(attacker))
    assert len(names) == 1 + len({e.patient for e in attacker.events})
    attacker.execute("DELETE FROM ledger_data_keys")
    keyed = attacker.chartledger_verify()
    assert_fails(keyed, *(f"data key {n}" for n in names))
    for name in names:
        assert keyed.fails_at(f"data key {name}", "missing")
    assert _payloads(keyed) == (0, 0)


@pytest.mark.parametrize("owner", ["practice", "a patient"])
def test_one_bit_of_a_wrapped_data_key_flipped_is_a_fail_line_not_a_traceback(
    attacker: Attacker, owner: str
) -> None:
    subject = "practice" if owner == "practice" else attacker.events[0].patient
    name = _key_of(attacker, subject)
    wrapped = bytearray(_data_keys(attacker)[name][1])
    wrapped[17] ^= 0x01
    attacker.execute(
        "UPDATE ledger_data_keys SET wrapped = ? WHERE name = ?", (bytes(wrapped), name)
    )
    keyed = attacker.chartledger_verify()
    assert_fails(keyed, f"data key {name}", because="does not unwrap")
    assert "Traceback" not in keyed.out


def test_a_key_re_inserted_after_its_disposal_is_found(attacker: Attacker) -> None:
    with attacker.ledger() as ledger:
        real = _registered_patient(ledger)
    subject = f"patient:{real}"
    name = _key_of(attacker, subject)
    (kept,) = [(n, s, w) for n, (s, w) in _data_keys(attacker).items() if n == name]
    with attacker.ledger() as ledger:
        dispose(ledger, real, policy=POLICY, by=uuid.uuid4(), at=LATER)
    attacker.execute("INSERT INTO ledger_data_keys (name, subject, wrapped) VALUES (?, ?, ?)", kept)
    keyed = attacker.chartledger_verify()
    assert_fails(keyed, f"data key {name}", because="but the store still holds it")


def test_a_legitimate_disposal_still_verifies(attacker: Attacker) -> None:
    with attacker.ledger() as ledger:
        real = _registered_patient(ledger)
        name = _key_of(attacker, f"patient:{real}")
        dispose(ledger, real, policy=POLICY, by=uuid.uuid4(), at=LATER)
        ledger.checkpointer.issue()
    assert name not in _data_keys(attacker)
    keyed, keyless = attacker.both()
    assert (keyed.code, keyless.code) == (0, 0), keyed.out + keyless.out
    assert _payloads(keyed)[1] == 2  # the registration and the note


# -- 12. checkpoints gone -------------------------------------------------------------------


def test_every_checkpoint_deleted_is_found(attacker: Attacker) -> None:
    attacker.execute("DELETE FROM ledger_checkpoints")
    assert_both_fail(attacker, "checkpoints", because="no checkpoint signs any of them")


# -- tiles: the stored tree is a cache, never trusted (LEDGER_FORMAT.md §12) ---------------------


def test_one_byte_of_a_stored_tile_hash_flipped_is_named_and_nothing_is_signed_over_it(
    attacker: Attacker,
) -> None:
    ((hashes,),) = attacker.rows("SELECT hashes FROM ledger_tiles WHERE level = 0 AND idx = 0")
    assert len(hashes) == 32 * CHECKPOINT  # one partial tile holds the whole log
    attacker.execute(
        "UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 0",
        (flip(bytes(hashes), 32 * 7 + 5),),
    )
    assert_both_fail(attacker, "tile 0/0", because="hash 7 (level 0, index 7)")
    with attacker.ledger() as ledger:
        # A proof through the damaged hash does not reproduce the signed root.
        with ledger.db.read() as c:
            checkpoint = latest_checkpoint(c)
            assert checkpoint is not None and checkpoint.size == CHECKPOINT
            proof = inclusion_proof(c, 6, CHECKPOINT)
            leaf = next(iter_leaves(c, 6, 7))
        with pytest.raises(ProofInvalid):
            verify_inclusion(6, CHECKPOINT, leaf_hash(leaf), proof, checkpoint.root)
        # A new process refuses to sign over the tiles, though the append itself goes through.
        subject = patient()
        ledger.save(Chart(subjects=(subject,), text="after the tampering"))
        with pytest.raises(TileMismatch, match=f"at size {CHECKPOINT}, its checkpoint signs"):
            ledger.checkpointer.issue()
        with ledger.db.read() as c:
            assert latest_checkpoint(c) == checkpoint
    # and `chartledger checkpoint` says so in one line
    set_env(attacker.config, attacker.monkeypatch)
    attacker.capsys.readouterr()
    assert chartledger(["checkpoint"]) == 1
    err = attacker.capsys.readouterr().err
    assert err.startswith("FAIL: no checkpoint signed: ") and err.count("\n") == 1, err


def test_a_stored_tile_cut_short_or_added_is_named(attacker: Attacker) -> None:
    ((hashes,),) = attacker.rows("SELECT hashes FROM ledger_tiles WHERE level = 0 AND idx = 0")
    attacker.execute(
        "UPDATE ledger_tiles SET hashes = ? WHERE level = 0 AND idx = 0", (bytes(hashes)[:-32],)
    )
    attacker.execute(
        "INSERT INTO ledger_tiles (level, idx, hashes) VALUES (?, ?, ?)", (3, 0, b"\1" * 32)
    )
    keyless = attacker.store_verify()
    assert_fails(keyless, "tile 0/0", "tile 3/0", because=f"holds {CHECKPOINT - 1} hashes")


@pytest.mark.parametrize("edit", ["rolled back", "hash flipped", "dropped", "invented"])
def test_a_stored_head_changed_is_found_by_both_verifiers(attacker: Attacker, edit: str) -> None:
    # The heads are a cache the signer builds its heads root from: `python -m verify store`
    # recomputes them as `chartledger verify` does, so a holder of the database who edits one
    # is named by the keyless verifier too.
    _move_links(attacker, to="ledger_links_main")  # settled: the writer keeps their heads
    latest = sorted(attacker.rows(LATEST), key=lambda r: r[0].encode())
    index, (subject, seq, position) = next((i, r) for i, r in enumerate(latest) if r[1] >= 2)
    if edit == "rolled back":  # to the subject's link before, with that link's own hash
        ((earlier,),) = attacker.rows(
            "SELECT position FROM ledger_links_main WHERE subject = ? AND seq = ?",
            (subject, seq - 1),
        )
        _, _, _, hash_ = head_row(subject, seq - 1, earlier)
        attacker.execute(
            "UPDATE ledger_heads SET seq = ?, position = ?, hash = ? WHERE subject = ?",
            (seq - 1, earlier, hash_, subject),
        )
        because = f"stored head is link {seq - 1} at position {earlier}"
    elif edit == "hash flipped":
        flipped = bytearray(head_row(subject, seq, position)[3])
        flipped[0] ^= 0x01
        attacker.execute(
            "UPDATE ledger_heads SET hash = ? WHERE subject = ?", (bytes(flipped), subject)
        )
        because = "stored hash"
    elif edit == "dropped":
        attacker.execute("DELETE FROM ledger_heads WHERE subject = ?", (subject,))
        because = "a subject with links has no stored head"
    else:  # a head for a subject no link names, sorted first
        attacker.execute(
            "INSERT INTO ledger_heads (subject, seq, position, hash) VALUES (?, ?, ?, ?)",
            head_row("patient:", 1, position),
        )
        index, because = 0, "a stored head names a subject with no links"
    assert_both_fail(attacker, f"ledger_heads leaf {index}", because=because)
