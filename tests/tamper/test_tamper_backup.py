"""An attacker who holds a backup folder (but not the master key) alters it; restore refuses
before it writes anything, into SQLite or PostgreSQL.

The attacker is thorough: besides editing a file, they rewrite the manifest so that every
SHA-256, length and count matches the edited files again, and recompute the roots. What still
catches them is what they cannot forge: headers hashed into leaves, leaves into checkpoints
signed by the practice's key, and keys sealed under the master key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import psycopg
import pytest

from api.cli import main as chartledger
from events.backup_log import LogRoots
from events.config import StoreConfig, parse_database_url
from events.keys import wrap_key
from events.ledger import Ledger
from tests.integration.test_ledger_store import QUIET
from tests.support import append_charts, patient, set_env

PATIENTS = 4


@pytest.fixture
def backup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A SQLite practice's backup folder, and the practice's master key file."""
    source = StoreConfig(home=tmp_path / "source")
    set_env(source, monkeypatch)
    assert chartledger(["init", "--name", "Tamper Practice"]) == 0
    ledger = Ledger(source, **QUIET)
    try:
        append_charts(ledger, [patient() for _ in range(PATIENTS)], events_per_chart=5)
    finally:
        ledger.close()
    folder = tmp_path / "backup"
    assert chartledger(["backup", "--out", str(folder)]) == 0
    return folder, source.master_key_path


# -- the attacker's tools ----------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    return list(msgpack.Unpacker(path.open("rb"), raw=False))


def write_records(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(msgpack.packb(r, use_bin_type=True) for r in records))


def rewrite_manifest(
    folder: Path, change: Callable[[dict[str, Any]], None] = lambda m: None
) -> None:
    """Make the manifest match the files as they now are (hashes, lengths, counts, roots)."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for entry in manifest["files"]:
        data = (folder / entry["path"]).read_bytes()
        entry["sha256"] = hashlib.sha256(data).hexdigest()
        entry["bytes"] = len(data)
        if entry["path"].endswith(".msgpack"):
            entry["records"] = len(read_records(folder / entry["path"]))
    chunks = [e for e in manifest["files"] if e["path"].startswith("events/")]
    manifest["counts"]["events"] = manifest["tree_size"] = sum(e["records"] for e in chunks)
    roots = LogRoots()
    for entry in chunks:
        for record in read_records(folder / entry["path"]):
            leaf = record["leaf"]
            try:
                roots.add(roots.size, leaf, msgpack.unpackb(leaf)["links"])
            except Exception:
                roots.range.append(hashlib.sha256(b"\x00" + leaf).digest())
    manifest["root"] = roots.root().hex()
    manifest["subjects_root"] = roots.subjects_root().hex()
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def chunk(folder: Path) -> Path:
    return folder / "events" / "00000000.msgpack"


# -- the restore, and proof that it wrote nothing -----------------------------------------------


def refused(
    store_config: StoreConfig,
    folder: Path,
    master_key: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> str:
    """Restore ``folder`` into the fresh ``store_config``; return its one error line."""
    set_env(store_config, monkeypatch)
    capsys.readouterr()
    code = chartledger(["restore", str(folder), "--master-key", str(master_key)])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0
    assert_nothing_written(store_config)
    return err


def assert_nothing_written(config: StoreConfig) -> None:
    assert not config.home.exists() or not any(config.home.iterdir())
    if config.database_url is None:
        assert not config.sqlite_path.exists()
        return
    location = parse_database_url(config.database_url)
    with psycopg.connect(location.conninfo(), autocommit=True) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s",
            (location.schema,),
        ).fetchone()
    assert tables == (0,)


# -- the cases ----------------------------------------------------------------------------------


def test_a_flipped_byte_in_an_event_chunk_is_refused_by_its_hash(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    data = bytearray(chunk(folder).read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk(folder).write_bytes(bytes(data))
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "events/00000000.msgpack: SHA-256 is" in err and "the manifest says" in err


def test_a_changed_sealed_payload_is_refused_even_with_the_manifest_rewritten(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    records = read_records(chunk(folder))
    state = msgpack.unpackb(records[7]["state"])
    state["sealed"] = bytes([state["sealed"][0] ^ 1]) + state["sealed"][1:]
    records[7]["state"] = msgpack.packb(state, use_bin_type=True)
    write_records(chunk(folder), records)
    rewrite_manifest(folder)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "position 7: the sealed payload does not hash to its header's" in err


def test_a_removed_event_is_refused_even_with_the_manifest_rewritten(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    records = read_records(chunk(folder))
    del records[5]
    write_records(chunk(folder), records)
    # The checkpoints that would now lie beyond the end go too.
    checkpoints = [
        c for c in read_records(folder / "checkpoints.msgpack") if c["size"] <= len(records)
    ]
    write_records(folder / "checkpoints.msgpack", checkpoints)

    def newest(manifest: dict[str, Any]) -> None:
        manifest["newest_checkpoint"] = checkpoints[-1]["size"]
        manifest["counts"]["checkpoints"] = len(checkpoints)

    rewrite_manifest(folder, newest)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "position 5 is missing from the backup (the next is 6)" in err


def test_a_removed_event_with_later_ones_renumbered_breaks_the_signed_root(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    records = read_records(chunk(folder))
    # An event with no subjects (the practice's own), so no chain link points at it.
    (practice_event,) = [i for i, r in enumerate(records) if "Practice" in r["topic"]]
    del records[practice_event]
    for i, record in enumerate(records):
        record["position"] = i
    write_records(chunk(folder), records)
    rewrite_manifest(folder)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "checkpoint at size" in err


def test_events_cut_off_at_the_end_are_refused_by_the_newest_checkpoint(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    records = read_records(chunk(folder))
    write_records(chunk(folder), records[:-3])

    def forget_the_backup_event(manifest: dict[str, Any]) -> None:
        manifest["backup_event"] = None

    rewrite_manifest(folder, forget_the_backup_event)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert f"beyond the backup's tree size {len(records) - 3}" in err


def test_a_data_key_wrapped_under_another_master_key_is_refused(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    path = folder / "data_keys.msgpack"
    records = read_records(path)
    records[0]["wrapped"] = wrap_key(
        bytes(32), bytes(range(32)), name=records[0]["name"], subject=records[0]["subject"]
    )
    write_records(path, records)
    rewrite_manifest(folder)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "a data key does not unwrap under this master key" in err


def test_a_swapped_signing_key_is_refused(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup
    path = folder / "signing_keys.msgpack"
    records = read_records(path)
    records[0]["wrapped"] = bytes(12) + b"\x00" * 135
    write_records(path, records)
    rewrite_manifest(folder)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "does not open under this master key" in err


def test_a_manifest_of_an_unknown_format_version_is_refused(
    store_config: StoreConfig,
    backup: tuple[Path, Path],
    monkeypatch,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    folder, master_key = backup

    def from_the_future(manifest: dict[str, Any]) -> None:
        manifest["version"] = 3

    rewrite_manifest(folder, from_the_future)
    err = refused(store_config, folder, master_key, monkeypatch, capsys)
    assert "backup format version 3; this restore reads versions 1, 2 only" in err
