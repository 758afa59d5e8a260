"""Appending through the ledger, checkpoints, key rotation, disposal, failed appends and
completeness proofs, read back from the live store on SQLite and on PostgreSQL.

Every check here goes through the real recorders and the real database; raw SQL is used only to
count rows, to simulate disposal (deleting a data key is allowed) and to try what the database
must refuse.
"""

from __future__ import annotations

import base64
import re
import sqlite3
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from api.cli import main as chartledger
from events.config import StoreConfig, parse_database_url
from events.db import Cursor
from events.ledger import Ledger
from events.log import completeness_proof
from events.sealing import DataKeyDestroyed, destroy_data_keys, owned_key_names
from legal_hold.retention import Disposal
from tests.conftest import pg_connect
from tests.support import QUIET, Chart, init_practice, patient, user
from verify.__main__ import main as verify_main
from verify.chain import verify_completeness
from verify.checkpoint import parse_note, verify_checkpoint
from verify.errors import ChainBroken
from verify.keyhistory import key_for_size
from verify.merkle import root_hash
from verify.records import parse_header, parse_leaf, split_record

FORMAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "LEDGER_FORMAT.md"


# -- the store, as raw SQL sees it ------------------------------------------------------------


class Raw:
    """A plain connection to the store's tables (triggers in force), with ``?`` placeholders."""

    def __init__(self, config: StoreConfig, conn: Any) -> None:
        self.config = config
        self.conn = conn
        self.postgres = config.database_url is not None

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.postgres:
            sql = sql.replace("?", "%s")
        return [tuple(row) for row in self.conn.execute(sql, params).fetchall()]

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self.postgres:
            sql = sql.replace("?", "%s")
        self.conn.execute(sql, params)

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return int(self.rows(sql, params)[0][0])

    def stream(self, value: uuid.UUID) -> Any:
        """A stream id as the columns hold it: 32 hex digits on SQLite, uuid on PostgreSQL."""
        return value if self.postgres else value.hex

    @property
    def refusal(self) -> type[Exception]:
        """What the database raises when a trigger refuses a row."""
        return psycopg.errors.IntegrityConstraintViolation if self.postgres else sqlite3.Error


@contextmanager
def raw(config: StoreConfig) -> Iterator[Raw]:
    if config.database_url is None:
        conn: Any = sqlite3.connect(config.sqlite_path, isolation_level=None, timeout=30)
    else:
        conn = pg_connect(config.database_url)
        conn.execute(f'SET search_path TO "{parse_database_url(config.database_url).schema}"')
    try:
        yield Raw(config, conn)
    finally:
        conn.close()


# -- the two verifiers, as an operator runs them ----------------------------------------------


def chartledger_verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = chartledger(["verify"])
    return code, capsys.readouterr().out


def store_verify(config: StoreConfig, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    if config.database_url is None:
        where = ["--sqlite", str(config.sqlite_path)]
    else:
        where = ["--database-url", config.database_url]
    capsys.readouterr()
    code = verify_main(["store", *where])
    return code, capsys.readouterr().out


def assert_both_verify(
    config: StoreConfig, capsys: pytest.CaptureFixture[str], leaves: int
) -> tuple[str, str]:
    code, out = chartledger_verify(capsys)
    assert code == 0, out
    assert re.search(rf"^OK: .*: {leaves} leaves, {leaves} events, ", out, re.M), out
    code, raw_out = store_verify(config, capsys)
    assert code == 0, raw_out
    assert re.search(rf"^OK: .*: {leaves} leaves, {leaves} events, ", raw_out, re.M), raw_out
    return out, raw_out


def tree_size(config: StoreConfig) -> int:
    with raw(config) as db:
        return db.count("SELECT COUNT(*) FROM ledger_leaves")


def leaves(config: StoreConfig) -> list[bytes]:
    with raw(config) as db:
        return [bytes(r[0]) for r in db.rows("SELECT leaf FROM ledger_leaves ORDER BY position")]


# -- 1. appending ------------------------------------------------------------------------------


def test_saved_events_come_back_equal_at_gapless_positions_with_one_leaf_each(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob, clinician = patient(), patient(), user()
    first = Chart(subjects=(alice,), text="opened")
    first.note(subjects=(alice,), text="bp 120/80")
    ledger.save(first)
    both = Chart(subjects=(bob, clinician), text="referral")
    unnamed = Chart(subjects=(), text="practice memo")  # sealed under the practice key
    ledger.save(both, unnamed)  # two aggregates, one transaction
    for i in range(4):
        first.note(subjects=(alice,), text=f"note {i}")
        both.note(subjects=(bob, clinician), text=f"reply {i}")
    ledger.save(first, both)
    charts = [first, both, unnamed]
    appended = sum(chart.version for chart in charts)
    total = 1 + appended  # position 0 is the practice's own Created event

    fresh = Ledger(store_config, **QUIET)
    try:
        for reader in (ledger, fresh):
            for chart in charts:
                again = reader.repository.get(chart.id)
                assert (again.texts, again.version) == (chart.texts, chart.version)
    finally:
        fresh.close()

    with raw(store_config) as db:
        positions = [r[0] for r in db.rows("SELECT position FROM ledger_leaves ORDER BY position")]
        event_positions = [
            r[0] for r in db.rows("SELECT position FROM stored_events ORDER BY position")
        ]
        matched = db.count(
            "SELECT COUNT(*) FROM stored_events e JOIN ledger_leaves l ON l.position = e.position "
            "AND l.stream = e.originator_id AND l.version = e.originator_version"
        )
        distinct = db.count(
            "SELECT COUNT(*) FROM (SELECT DISTINCT stream, version FROM ledger_leaves) d"
        )
    assert positions == list(range(total))
    assert event_positions == list(range(total))
    assert matched == distinct == total

    out, _ = assert_both_verify(store_config, capsys, total)
    assert f"payloads: {total} opened and matching their commitments, 0 disposed" in out


def test_each_leaf_links_the_event_into_every_subject_it_names(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    alice, clinician = patient(), user()
    ledger.save(Chart(subjects=(alice,), text="a"))
    ledger.save(Chart(subjects=(clinician, alice), text="b"))
    ledger.save(Chart(subjects=(clinician,), text="c"))
    links = [parse_leaf(leaf).links for leaf in leaves(store_config)]
    assert links == [
        (),  # the practice's Created event concerns no subject
        ((alice, 1, None),),
        ((alice, 2, 1), (clinician, 1, None)),  # subjects in UTF-8 order: patient < user
        ((clinician, 2, 2),),
    ]


# -- 2. checkpoints and key rotation ---------------------------------------------------------


def _stored_checkpoints(config: StoreConfig) -> list[bytes]:
    with raw(config) as db:
        return [bytes(r[0]) for r in db.rows("SELECT note FROM ledger_checkpoints ORDER BY size")]


def test_checkpoints_are_issued_every_n_events_and_on_demand_and_sign_the_true_root(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init_practice(store_config, monkeypatch)  # signs a checkpoint at size 1
    ledger = Ledger(store_config, every_events=5, every_seconds=10**9)
    try:
        subject = patient()
        chart = Chart(subjects=(subject,), text="opened")
        ledger.save(chart)
        for i in range(11):  # one event per save: sizes 3 … 13
            chart.note(subjects=(subject,), text=f"n{i}")
            ledger.save(chart)
        for i in range(7):  # one save of seven events: size 20
            chart.note(subjects=(subject,), text=f"batch {i}")
        ledger.save(chart)
        sizes = [parse_note(n).size for n in _stored_checkpoints(store_config)]
        assert sizes == [1, 6, 11, 20]
        assert ledger.checkpointer.issue().size == 20  # already signed: the same one back
        assert len(_stored_checkpoints(store_config)) == 4
        chart.note(subjects=(subject,), text="late")
        ledger.save(chart)
        assert ledger.checkpointer.issue().size == 21
        history = ledger.key_history()
    finally:
        ledger.close()

    capsys.readouterr()
    assert chartledger(["checkpoint"]) == 0  # nothing new: the note at size 21 again
    printed = capsys.readouterr().out
    lines = printed.split("\n")
    assert lines[1] == str(tree_size(store_config)) == "21"
    assert printed.encode() == _stored_checkpoints(store_config)[-1]

    all_leaves = leaves(store_config)
    notes = _stored_checkpoints(store_config)
    assert [parse_note(n).size for n in notes] == [1, 6, 11, 20, 21]
    for note in notes:
        checkpoint = parse_note(note)
        verify_checkpoint(checkpoint, key_for_size(history, checkpoint.size).public_key)
        assert checkpoint.root == root_hash(all_leaves[: checkpoint.size])
    assert_both_verify(store_config, capsys, 21)


def test_cli_checkpoint_prints_a_signed_note_whose_size_line_is_the_tree_size(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    for subject in (patient(), patient(), user()):
        ledger.save(Chart(subjects=(subject,), text="x"))
    capsys.readouterr()
    assert chartledger(["checkpoint"]) == 0
    printed = capsys.readouterr().out
    origin, size, root, subjects, when, key, blank, signature, end = printed.split("\n")
    assert origin == ledger.origin
    assert size == str(tree_size(store_config)) == "4"
    assert subjects.startswith("subjects ") and when.startswith("time ")
    assert key == f"key {ledger.key_history()[0].key_id}"
    assert (blank, end) == ("", "")
    assert signature.startswith(f"— {origin} ")
    checkpoint = parse_note(printed.encode())
    verify_checkpoint(checkpoint, ledger.key_history()[0].public_key)
    assert checkpoint.root == root_hash(leaves(store_config))
    assert base64.b64encode(checkpoint.root).decode() == root


def test_after_rotate_key_later_checkpoints_use_the_new_key_and_everything_verifies(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    first_key = ledger.key_history()[0].key_id
    for _ in range(3):
        ledger.save(Chart(subjects=(patient(),), text="before"))
    capsys.readouterr()
    assert chartledger(["rotate-key"]) == 0
    out = capsys.readouterr().out
    match = re.match(r"New signing key ([0-9a-f]{64}) in force from tree size (\d+)\n", out)
    assert match, out
    new_key, from_size = match[1], int(match[2])
    # Created, three charts, then the key history's first two events: Started and Rotated.
    assert from_size == 6
    key_file = store_config.signing_key_path(new_key)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    later = Ledger(store_config, every_events=3, every_seconds=10**9)
    try:
        for _ in range(7):
            later.save(Chart(subjects=(patient(),), text="after"))
        later.checkpointer.issue()
        history = later.key_history()
    finally:
        later.close()

    assert [s.seq for s in history] == [0, 1]
    assert history[0].key_id == first_key and history[0].previous is None
    assert history[1].key_id == new_key
    assert history[1].previous == first_key
    assert history[1].from_size == from_size
    signers = {parse_note(n).size: parse_note(n).key_id for n in _stored_checkpoints(store_config)}
    assert signers[1] == first_key
    assert signers[from_size] == new_key  # rotate-key signs at once with the new key
    assert all(key == new_key for size, key in signers.items() if size >= from_size)
    assert max(signers) == 13 and len([s for s in signers if s > from_size]) >= 2
    assert_both_verify(store_config, capsys, 13)


def test_the_rotation_event_sits_at_from_size_minus_one_with_the_type_the_format_names(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    # LEDGER_FORMAT.md §9 names the rotation event's type; a second verifier built from the
    # document alone looks for exactly that type at position from_size − 1.
    named = re.search(
        r"ledger event\s+\(type\s+`([^`]+)`[^)]*\)\s+at\s+position\s+`from_size − 1`",
        FORMAT_DOC.read_text(),
    )
    assert named, "§9 should name the rotation event's type"
    ledger.save(Chart(subjects=(patient(),), text="x"))
    assert chartledger(["rotate-key"]) == 0
    statement = ledger.key_history()[1]
    with raw(store_config) as db:
        ((state,),) = db.rows(
            "SELECT state FROM stored_events WHERE position = ?", (statement.from_size - 1,)
        )
    header = parse_header(split_record(bytes(state))[0])
    assert header.type.endswith("KeyHistory.Rotated")
    assert header.type == named[1]


# -- 3. disposal -------------------------------------------------------------------------------


def _dispose(config: StoreConfig, subject: str) -> None:
    """What disposal does to the store, from another process: a ``Disposed`` event naming the
    subject's wrapped data key, and the key deleted in the same transaction (a key deleted
    without one is a FAIL of `chartledger verify`, LEDGER_FORMAT.md §4.3)."""
    elsewhere = Ledger(config, **QUIET)
    try:
        with elsewhere.db.read() as c:
            names = owned_key_names(c, subject)
        assert len(names) == 1
        disposal = Disposal(
            patient_id=uuid.UUID(subject.partition(":")[2]),
            policy={"name": "test"},
            retain_until=date.today(),
            key_names=names,
            by=uuid.uuid4(),
            at=datetime.now(UTC),
        )

        def destroy(cursor: Cursor, positions: list[int]) -> None:
            destroy_data_keys(cursor, elsewhere.db.dialect, names, disposal.id)

        elsewhere.save(disposal, after_append=destroy)
    finally:
        elsewhere.close()
    with raw(config) as db:
        after = db.count("SELECT COUNT(*) FROM ledger_data_keys WHERE subject = ?", (subject,))
    assert after == 0


def _disposal_fixture(ledger: Ledger) -> tuple[str, list[Chart], list[Chart]]:
    gone, kept = patient(), patient()
    disposed = [Chart(subjects=(gone,), text="a"), Chart(subjects=(gone,), text="b")]
    disposed[0].note(subjects=(gone,), text="a2")
    retained = [Chart(subjects=(kept,), text="c")]
    retained[0].note(subjects=(kept,), text="c2")
    ledger.save(*disposed, *retained)
    return gone, disposed, retained


def test_disposing_a_subjects_data_key_leaves_the_store_valid_and_reports_disposed_payloads(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    gone, _, _ = _disposal_fixture(ledger)
    _dispose(store_config, gone)
    out, _ = assert_both_verify(store_config, capsys, 7)  # and the Disposed event
    assert "payloads: 4 opened and matching their commitments, 3 disposed" in out


def test_disposed_payloads_cannot_be_opened_by_a_fresh_ledger(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    gone, disposed, retained = _disposal_fixture(ledger)
    _dispose(store_config, gone)
    fresh = Ledger(store_config, **QUIET)
    try:
        for chart in disposed:
            with pytest.raises(DataKeyDestroyed, match=f"^no data key for {gone}$"):
                fresh.repository.get(chart.id)
        assert fresh.repository.get(retained[0].id).texts == ["c", "c2"]
    finally:
        fresh.close()


def test_disposed_payloads_cannot_be_opened_by_the_ledger_that_wrote_them(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    gone, disposed, retained = _disposal_fixture(ledger)
    assert ledger.repository.get(disposed[0].id).texts == ["a", "a2"]  # readable until disposal
    _dispose(store_config, gone)
    for chart in disposed:
        with pytest.raises(DataKeyDestroyed, match=f"^no data key for {gone}$"):
            ledger.repository.get(chart.id)
    assert ledger.repository.get(retained[0].id).texts == ["c", "c2"]


def test_an_event_written_after_disposal_by_the_live_ledger_can_be_read_by_a_fresh_one(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    # A subject's key destroyed elsewhere (disposal in another process): what this process
    # appends next for the subject must be sealed under a key the store still holds.
    gone, _, _ = _disposal_fixture(ledger)
    _dispose(store_config, gone)
    later = Chart(subjects=(gone,), text="written after disposal")
    ledger.save(later)
    fresh = Ledger(store_config, **QUIET)
    try:
        assert fresh.repository.get(later.id).texts == ["written after disposal"]
    finally:
        fresh.close()
    out, _ = assert_both_verify(store_config, capsys, 8)  # and the Disposed event
    assert "payloads: 5 opened and matching their commitments, 3 disposed" in out


# -- 4. a failed append leaves nothing behind --------------------------------------------------


class LeafBuildingFailed(RuntimeError):
    pass


def test_a_failure_while_building_the_ledger_rows_rolls_back_the_whole_append(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.save(Chart(subjects=(patient(),), text="before"))
    subject = patient()
    doomed = Chart(subjects=(subject,), text="opened")
    doomed.note(subjects=(subject,), text="second")
    seen: list[list[int]] = []

    def fail(cursor: Any, positions: list[int]) -> None:
        seen.append(list(positions))
        # The rows are there inside the transaction when this runs ...
        cursor.execute("SELECT COUNT(*) FROM ledger_leaves WHERE position >= ?", (positions[0],))
        assert cursor.fetchone()[0] == 2
        raise LeafBuildingFailed("after the rows were inserted")

    with pytest.raises(LeafBuildingFailed, match="after the rows were inserted"):
        ledger.save(doomed, after_append=fail)
    assert seen == [[2, 3]]

    with raw(store_config) as db:  # ... and gone after the rollback
        stream = db.stream(doomed.id)
        assert (
            db.count("SELECT COUNT(*) FROM stored_events WHERE originator_id = ?", (stream,)) == 0
        )
        assert db.count("SELECT COUNT(*) FROM ledger_leaves WHERE stream = ?", (stream,)) == 0
        assert db.count("SELECT COUNT(*) FROM ledger_links WHERE subject = ?", (subject,)) == 0
        assert db.count("SELECT COUNT(*) FROM ledger_leaves") == 2
    assert_both_verify(store_config, capsys, 2)

    # The same ledger goes on appending from the true tip, with the subject's chain from #1.
    again = Chart(subjects=(subject,), text="retry")
    ledger.save(again)
    assert ledger.repository.get(again.id).texts == ["retry"]
    assert [parse_leaf(leaf).links for leaf in leaves(store_config)][2] == ((subject, 1, None),)
    assert_both_verify(store_config, capsys, 3)


def test_the_database_refuses_an_event_row_without_its_leaf(
    ledger: Ledger, store_config: StoreConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.save(Chart(subjects=(patient(),), text="x"))
    with raw(store_config) as db:
        stream = db.stream(uuid.uuid4())
        with pytest.raises(db.refusal, match="an event without its ledger leaf is refused"):
            db.execute(
                "INSERT INTO stored_events (originator_id, originator_version, topic, state, "
                "position) VALUES (?, 1, 'tests.support:Chart.Opened', ?, 2)",
                (stream, b"\x80"),
            )
        assert db.count("SELECT COUNT(*) FROM stored_events") == 2
    assert_both_verify(store_config, capsys, 2)


def test_the_database_refuses_an_event_row_that_borrows_another_events_leaf(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    chart = Chart(subjects=(patient(),), text="x")
    ledger.save(chart)
    with raw(store_config) as db:
        ((state,),) = db.rows("SELECT state FROM stored_events WHERE position = 1")
        for stream, version, position in [
            (db.stream(uuid.uuid4()), 1, 1),  # the leaf at 1 is another stream's
            (db.stream(chart.id), 2, 1),  # ... and for another version
        ]:
            with pytest.raises(db.refusal, match="an event without its ledger leaf is refused"):
                db.execute(
                    "INSERT INTO stored_events (originator_id, originator_version, topic, "
                    "state, position) VALUES (?, ?, 'tests.support:Chart.Noted', ?, ?)",
                    (stream, version, bytes(state), position),
                )
        assert db.count("SELECT COUNT(*) FROM stored_events") == 2


# -- 7. completeness proofs from the live store ------------------------------------------------


def test_a_subjects_completeness_proof_from_the_live_store_verifies_against_its_checkpoint(
    ledger: Ledger, store_config: StoreConfig
) -> None:
    wanted, others = patient(), [patient(), user()]
    mine = Chart(subjects=(wanted,), text="opened")
    shared = Chart(subjects=(wanted, others[1]), text="joint")
    theirs = [Chart(subjects=(s,), text="opened") for s in others]
    ledger.save(theirs[0])
    ledger.save(mine)
    ledger.save(theirs[1], shared)
    for i in range(3):
        theirs[0].note(subjects=(others[0],), text=str(i))
        ledger.save(theirs[0])
        mine.note(subjects=(wanted,), text=str(i))
        ledger.save(mine)
    shared.note(subjects=(wanted, others[1]), text="again")
    ledger.save(shared, theirs[1])
    checkpoint = ledger.checkpointer.issue()
    verify_checkpoint(checkpoint, ledger.key_history()[0].public_key)
    mine.note(subjects=(wanted,), text="after the checkpoint")
    ledger.save(mine)

    # Where the subject's events are, found independently from the headers.
    expected = []
    with raw(store_config) as db:
        for position, state in db.rows(
            "SELECT position, state FROM stored_events ORDER BY position"
        ):
            header = parse_header(split_record(bytes(state))[0])
            if wanted in header.subjects and position < checkpoint.size:
                expected.append(position)
    assert len(expected) == 6 and expected != list(range(expected[0], expected[0] + 6))

    with ledger.db.read() as cursor:
        proof = completeness_proof(cursor, wanted, checkpoint.size)
    positions = verify_completeness(
        proof, checkpoint.size, checkpoint.root, checkpoint.subjects_root
    )
    assert positions == expected

    for left_out in range(len(proof.leaves)):
        short = proof._replace(leaves=[p for i, p in enumerate(proof.leaves) if i != left_out])
        with pytest.raises(ChainBroken, match=rf"^{wanted}: leaf #\d+ at position \d+ is missing"):
            verify_completeness(short, checkpoint.size, checkpoint.root, checkpoint.subjects_root)


def test_a_checkpoint_signed_in_a_transaction_that_fails_at_commit_leaves_no_trace(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checkpoints fall due inside the append's transaction. When that transaction fails at
    COMMIT, after the roots were computed over its leaves, neither the checkpoint nor the
    roots survive: the next checkpoint signs the true log. (PostgreSQL: a deferred constraint
    trigger is how a commit fails on demand.)"""
    if store_config.database_url is None:
        pytest.skip("a commit that fails on demand needs a deferred trigger (PostgreSQL)")
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config, every_events=1, every_seconds=10**9)
    location = parse_database_url(store_config.database_url)
    with pg_connect() as conn:
        conn.execute(f'SET search_path TO "{location.schema}"')
        conn.execute(
            "CREATE FUNCTION refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER refuse_doomed AFTER INSERT ON stored_events "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            "WHEN (NEW.originator_version = 2) EXECUTE FUNCTION refuse_doomed()"
        )
    try:
        subject = patient()
        chart = Chart(subjects=(subject,), text="opened")
        ledger.save(chart)  # size 2, its checkpoint in the same transaction
        chart.note(subjects=(subject,), text="doomed")
        with pytest.raises(Exception, match="refused at commit"):
            ledger.save(chart)
        assert [parse_note(n).size for n in _stored_checkpoints(store_config)] == [1, 2]
        with pg_connect() as conn:
            conn.execute(f'SET search_path TO "{location.schema}"')
            conn.execute("DROP TRIGGER refuse_doomed ON stored_events")
        other = Chart(subjects=(patient(),), text="after")
        ledger.save(other)  # size 3: signed over the true leaves, not the doomed one
    finally:
        ledger.close()
    notes = _stored_checkpoints(store_config)
    assert [parse_note(n).size for n in notes] == [1, 2, 3]
    assert parse_note(notes[-1]).root == root_hash(leaves(store_config)[:3])
    assert_both_verify(store_config, capsys, 3)
