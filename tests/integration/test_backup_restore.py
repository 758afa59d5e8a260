"""Backup and restore through the CLI, on SQLite and on PostgreSQL and from one to the other:
the restored store verifies, has the same root at the same size, opens the same payloads, keeps
disposed records disposed, and rebuilds views equal to the source's row for row."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from api.cli import main as chartledger
from events import backup_write
from events.backup_restore import LEDGER_TABLES, restore_backup
from events.config import StoreConfig
from events.ledger import Ledger
from legal_hold.retention import dispose
from projections.rebuild import runner_for
from tests.conftest import PG_URL, _unavailable, pg_connect
from tests.integration import test_clinical_views as clinical
from tests.integration import test_legal_hold as holds
from tests.integration.test_ledger_store import QUIET
from tests.support import append_charts, patient, set_env
from verify.hashing import short

OWNER_PASSWORD = "backup owner passphrase 1"


@dataclass
class Source:
    config: StoreConfig
    owner: UUID
    kept: UUID  # a patient whose record is readable
    disposed: UUID  # a patient whose record was disposed of


def run(config: StoreConfig, monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``chartledger ARGS`` with the environment pointing at ``config``, as a user runs it."""
    set_env(config, monkeypatch)
    return chartledger(list(args))


def make_practice(
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    every_view: bool = True,
) -> Source:
    """A practice with an owner, a disposal, checkpoints and (``every_view``) rows in every
    view."""
    monkeypatch.setenv("CHARTLEDGER_OWNER_PASSWORD", OWNER_PASSWORD)
    capsys.readouterr()
    assert (
        run(config, monkeypatch, "init", "--name", "Backup Practice", "--owner", "olivia",
            "--owner-name", "Olivia Owner") == 0
    )  # fmt: skip
    found = re.search(r"First owner 'olivia' \(user ([0-9a-f-]{36})\)", capsys.readouterr().out)
    assert found is not None
    assert run(config, monkeypatch, "rotate-key") == 0  # two signing keys to carry over
    ledger = Ledger(config, **QUIET)
    try:
        runner = runner_for(ledger)
        if every_view:
            _fill_every_view(ledger, runner)
        kept = holds.a_patient(ledger)
        disposed = holds.a_patient(ledger, born=date(1960, 1, 1))
        ledger.checkpointer.issue()
        dispose(ledger, disposed, policy=holds.POLICY, by=uuid.uuid4(), at=holds.LATER)
        runner.rebuild()
    finally:
        ledger.close()
    return Source(config, UUID(found.group(1)), kept, disposed)


def _fill_every_view(ledger: Ledger, runner: Any) -> None:
    clinical.test_every_read_of_phi_shows_in_the_audit_view_and_the_access_report(ledger, runner)
    clinical.test_double_booking_is_refused_and_the_schedule_shows_each_provider_day(ledger, runner)
    clinical.test_the_accounting_of_disclosures_lists_what_164_528_asks(ledger, runner)
    clinical.a_record_made_by_a_user(ledger)
    clinical.test_an_event_of_two_patients_is_in_each_ones_audit_rows_and_one_patients_in_theirs(
        ledger, runner
    )


def fresh_sqlite(tmp_path: Path, name: str) -> StoreConfig:
    return StoreConfig(home=tmp_path / name)


@pytest.fixture
def fresh_postgres() -> Iterator[Any]:
    """Makes fresh PostgreSQL stores (one schema each), dropped at the end."""
    if not PG_URL:
        _unavailable("CHARTLEDGER_TEST_DATABASE_URL is not set")
    conn = pg_connect()
    schemas: list[str] = []

    def make(tmp_path: Path, name: str) -> StoreConfig:
        schema = "t_" + uuid.uuid4().hex[:16]
        conn.execute(f'CREATE SCHEMA "{schema}"')
        schemas.append(schema)
        return StoreConfig(home=tmp_path / name, database_url=f"{PG_URL}?schema={schema}")

    yield make
    for schema in schemas:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    conn.close()


def backup(
    source: StoreConfig, out: Path, monkeypatch: pytest.MonkeyPatch, *more: str
) -> dict[str, Any]:
    assert run(source, monkeypatch, "backup", "--out", str(out), *more) == 0
    return json.loads((out / "manifest.json").read_text())


def restore(
    target: StoreConfig, folder: Path, master_key: Path, monkeypatch: pytest.MonkeyPatch
) -> int:
    return run(target, monkeypatch, "restore", str(folder), "--master-key", str(master_key))


# -- what the restored store must show ----------------------------------------------------------


def leaves(config: StoreConfig, size: int) -> list[tuple[int, bytes]]:
    ledger = Ledger(config, **QUIET)
    try:
        with ledger.db.read() as c:
            c.execute(
                "SELECT position, leaf FROM ledger_leaves WHERE position < ? ORDER BY position",
                (size,),
            )
            return [(p, bytes(leaf)) for p, leaf in c.fetchall()]
    finally:
        ledger.close()


def events(config: StoreConfig) -> list[tuple[Any, ...]]:
    """Every stored event as the format defines it, whichever store it is in."""
    ledger = Ledger(config, **QUIET)
    try:
        with ledger.db.read() as c:
            c.execute(
                "SELECT position, originator_id, originator_version, topic, state "
                "FROM stored_events ORDER BY position"
            )
            return [
                (p, str(UUID(str(s))), v, t, bytes(state)) for p, s, v, t, state in c.fetchall()
            ]
    finally:
        ledger.close()


def views(config: StoreConfig) -> dict[str, list[tuple[Any, ...]]]:
    ledger = Ledger(config, **QUIET)
    try:
        runner_for(ledger).catch_up()
        return clinical.snapshot(ledger)
    finally:
        ledger.close()


def data_key_names(config: StoreConfig) -> set[str]:
    ledger = Ledger(config, **QUIET)
    try:
        with ledger.db.read() as c:
            c.execute("SELECT name FROM ledger_data_keys")
            return {row[0] for row in c.fetchall()}
    finally:
        ledger.close()


def assert_same_practice(
    source: Source,
    target: StoreConfig,
    manifest: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    size = manifest["tree_size"]
    # Verifies, payloads included: the store check, then every payload opened with the keys.
    capsys.readouterr()
    assert run(target, monkeypatch, "verify") == 0
    out = capsys.readouterr().out
    assert f"OK: {target.display_location()}: {size} leaves, {size} events" in out
    assert f"root {short(bytes.fromhex(manifest['root']))}" in out
    assert re.search(r"payloads: \d+ opened and matching their commitments, 2 disposed", out)
    # The same rows with the same positions and bytes.
    assert leaves(target, size) == leaves(source.config, size)
    assert events(target) == events(source.config)[:size]
    # The same views, rebuilt from the restored log.
    expected = views(source.config)
    assert all(expected.values())  # every view has rows to compare
    assert views(target) == expected
    # Payloads open; the disposed patient's key did not come back.
    ledger = Ledger(target, **QUIET)
    try:
        assert ledger.repository.get(source.kept).given_name == "Ada"
        with pytest.raises(LookupError):
            ledger.repository.get(source.disposed)
    finally:
        ledger.close()
    assert data_key_names(target) == data_key_names(source.config)
    assert not any(n.startswith(f"patient:{source.disposed}#") for n in data_key_names(target))


# -- the round trips ----------------------------------------------------------------------------


def test_a_backup_restores_into_a_new_store_of_the_same_kind(
    store_config: StoreConfig,
    fresh_postgres: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make_practice(store_config, monkeypatch, capsys)
    manifest = backup(store_config, tmp_path / "backup", monkeypatch, "--by", str(source.owner))
    target = (
        fresh_sqlite(tmp_path, "restored")
        if store_config.database_url is None
        else fresh_postgres(tmp_path, "restored")
    )
    assert restore(target, tmp_path / "backup", store_config.master_key_path, monkeypatch) == 0
    assert_same_practice(source, target, manifest, monkeypatch, capsys)
    # The restored practice signs with its current key, the rotated one.
    assert run(target, monkeypatch, "checkpoint") == 0
    assert run(target, monkeypatch, "verify") == 0
    assert manifest["counts"]["key_statements"] == manifest["counts"]["signing_keys"] == 2
    # The backup holds the record of its own making, by the owner who took it.
    (taken,) = [e for e in events(target) if e[3] == "events.backup_record:Backups.Taken"]
    assert taken[0] == manifest["backup_event"]
    assert f"user:{source.owner}".encode() in taken[4]
    assert manifest["newest_checkpoint"] == manifest["backup_event"] + 1 == manifest["tree_size"]


@pytest.mark.postgres
def test_sqlite_migrates_to_postgresql_and_back_with_equal_roots(
    fresh_postgres: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make_practice(fresh_sqlite(tmp_path, "source"), monkeypatch, capsys)
    master_key = source.config.master_key_path
    first = backup(source.config, tmp_path / "to-pg", monkeypatch)
    on_pg = fresh_postgres(tmp_path, "on-pg")
    assert restore(on_pg, tmp_path / "to-pg", master_key, monkeypatch) == 0
    assert_same_practice(source, on_pg, first, monkeypatch, capsys)

    second = backup(on_pg, tmp_path / "to-sqlite", monkeypatch)
    assert second["source"] == "postgresql" and second["tree_size"] > first["tree_size"]
    back = fresh_sqlite(tmp_path, "back")
    assert restore(back, tmp_path / "to-sqlite", master_key, monkeypatch) == 0
    assert_same_practice(Source(on_pg, source.owner, source.kept, source.disposed), back,
                         second, monkeypatch, capsys)  # fmt: skip
    # The log that went out to PostgreSQL came back unchanged under the later entries.
    assert leaves(back, first["tree_size"]) == leaves(source.config, first["tree_size"])
    practice = json.loads(back.practice_path.read_text())
    assert practice["store"] == "sqlite"
    assert practice["practice_id"] == first["practice_id"]


# -- refusals -----------------------------------------------------------------------------------


def counts(config: StoreConfig) -> tuple[int, ...]:
    ledger = Ledger(config, **QUIET)
    try:
        with ledger.db.read() as c:
            found = []
            for table in ("stored_events", "ledger_leaves", "ledger_keys", "ledger_data_keys"):
                c.execute(f"SELECT COUNT(*) FROM {table}")
                found.append(c.fetchone()[0])  # type: ignore[index]
            return tuple(found)
    finally:
        ledger.close()


def test_restore_into_a_store_that_is_not_empty_is_refused_and_writes_nothing(
    store_config: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make_practice(store_config, monkeypatch, capsys, every_view=False)
    backup(store_config, tmp_path / "backup", monkeypatch)
    before = counts(store_config)
    capsys.readouterr()
    # Into the very home it came from: a practice is there.
    assert restore(store_config, tmp_path / "backup", source.config.master_key_path,
                   monkeypatch) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "a practice already exists" in err
    # A new home in front of the same, filled store.
    same_store = StoreConfig(home=tmp_path / "new-home", database_url=store_config.database_url)
    if store_config.database_url is None:
        same_store.home.mkdir()
        same_store.sqlite_path.write_bytes(store_config.sqlite_path.read_bytes())
    assert restore(same_store, tmp_path / "backup", source.config.master_key_path,
                   monkeypatch) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not empty" in err
    assert not same_store.practice_path.exists() and not same_store.keys_dir.exists()
    assert counts(store_config) == before


def test_restore_needs_the_practices_own_master_key(
    store_config: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make_practice(fresh_sqlite(tmp_path, "source"), monkeypatch, capsys, False)
    backup(source.config, tmp_path / "backup", monkeypatch)
    other = tmp_path / "other.key"
    other.write_bytes(bytes(range(32)))
    capsys.readouterr()
    assert restore(store_config, tmp_path / "backup", other, monkeypatch) == 2
    err = capsys.readouterr().err.strip()
    assert "does not open under this master key" in err and err.count("\n") == 0
    assert not store_config.home.exists() or not any(store_config.home.iterdir())
    assert run(store_config, monkeypatch, "restore", str(tmp_path / "backup")) == 2
    assert "restore needs the practice's master key" in capsys.readouterr().err
    nowhere = tmp_path / "no-such-backup"
    assert restore(store_config, nowhere, source.config.master_key_path, monkeypatch) == 2
    assert capsys.readouterr().err.strip() == (
        f"chartledger: error: {nowhere} holds no manifest.json: not a backup, or an unfinished one"
    )
    # The master key put in the new home first, as from its offline copy: no --master-key needed.
    store_config.master_key_path.parent.mkdir(parents=True)
    store_config.master_key_path.write_bytes(source.config.master_key_path.read_bytes())
    assert run(store_config, monkeypatch, "restore", str(tmp_path / "backup")) == 0
    assert run(store_config, monkeypatch, "verify") == 0


def test_backup_goes_only_into_a_new_folder_and_only_by_an_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_practice(fresh_sqlite(tmp_path, "source"), monkeypatch, capsys, False)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "something").write_text("x")
    capsys.readouterr()
    assert run(source.config, monkeypatch, "backup", "--out", str(taken)) == 2
    assert "not an empty folder" in capsys.readouterr().err
    nobody = str(uuid.uuid4())
    assert run(source.config, monkeypatch, "backup", "--out", str(tmp_path / "b"), "--by",
               nobody) == 2  # fmt: skip
    assert f"no user {nobody}" in capsys.readouterr().err
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_backup_of_a_live_store_is_one_consistent_snapshot(
    store_config: StoreConfig,
    fresh_postgres: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another writer appends, signs a checkpoint and creates data keys after the backup has
    read the log's size and before it reads the checkpoints and keys: the backup holds the
    store as it stood when its snapshot began (a checkpoint beyond its size would make it
    unrestorable), and restores to a store that verifies with the source's leaves."""
    source = make_practice(store_config, monkeypatch, capsys, every_view=False)
    writer = Ledger(store_config, **QUIET)
    backing_up = Ledger(store_config, **QUIET)
    signing_keys = backup_write._write_signing_keys

    def meanwhile(*args: Any) -> Any:
        append_charts(writer, [patient() for _ in range(3)], events_per_chart=2)
        writer.checkpointer.issue()
        return signing_keys(*args)

    monkeypatch.setattr(backup_write, "_write_signing_keys", meanwhile)
    try:
        manifest = backup_write.take_backup(backing_up, tmp_path / "backup")
    finally:
        backing_up.close()
        writer.close()
    assert len(leaves(store_config, 10**9)) == manifest.tree_size + 6  # the writer's 6 events
    assert manifest.newest_checkpoint == manifest.tree_size
    target = (
        fresh_sqlite(tmp_path, "restored")
        if store_config.database_url is None
        else fresh_postgres(tmp_path, "restored")
    )
    assert restore(target, tmp_path / "backup", store_config.master_key_path, monkeypatch) == 0
    assert run(target, monkeypatch, "verify") == 0
    assert leaves(target, 10**9) == leaves(source.config, manifest.tree_size)
    assert len(data_key_names(target)) == manifest.counts["data_keys"]
    assert len(data_key_names(source.config)) == manifest.counts["data_keys"] + 3


def test_an_interrupted_restore_leaves_nothing_and_can_be_run_again(
    store_config: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C in the middle of inserting the rows: the transaction rolls back, the home's new
    files go, and a second restore into the same place succeeds."""
    source = make_practice(fresh_sqlite(tmp_path, "source"), monkeypatch, capsys, False)
    backup(source.config, tmp_path / "backup", monkeypatch)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        restore_backup(
            store_config,
            tmp_path / "backup",
            master_key_file=source.config.master_key_path,
            restoring=interrupt,
        )
    assert not store_config.practice_path.exists()
    assert not list(store_config.keys_dir.glob("*"))
    if store_config.database_url is None:
        assert not store_config.sqlite_path.exists()
    else:  # the tables stay, as init would make them, without a row
        filled = [t for t, n in zip(LEDGER_TABLES, raw_counts(store_config), strict=True) if n]
        assert filled == []
    assert restore(store_config, tmp_path / "backup", source.config.master_key_path,
                   monkeypatch) == 0  # fmt: skip
    assert run(store_config, monkeypatch, "verify") == 0


def raw_counts(config: StoreConfig) -> list[int]:
    with pg_connect(str(config.database_url).split("?")[0]) as conn:
        schema = str(config.database_url).rsplit("schema=", 1)[1]
        return [
            conn.execute(f'SELECT COUNT(*) FROM "{schema}".{table}').fetchone()[0]
            for table in LEDGER_TABLES
        ]
