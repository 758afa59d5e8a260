"""Backups carry the witnesses' cosignatures and the TSA's timestamps (docs/BACKUP_FORMAT.md §6.1,
§9 step 7a): on SQLite and PostgreSQL a cosigned, timestamped practice restores with the same
evidence and its checkpoint file still verifies; an altered cosignature or timestamp is refused
before anything is written; a version 1 backup (without them) still restores.

The witness is the real app (``chartledger witness serve``'s) over HTTP, the TSA is OpenSSL's
(tests/integration/test_timestamps.py); the attacker edits the backup folder and rewrites its
manifest to match, as in tests/tamper/test_tamper_backup.py.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.cli import main as chartledger
from api.witness.app import app_from_home
from api.witness.home import WitnessHome
from events.config import StoreConfig
from events.ledger import Ledger
from events.witnessing import TsaConfig, WitnessConfig, push_to_witness, timestamp_latest
from tests.integration.test_backup_restore import (
    fresh_postgres,  # noqa: F401  (a fixture)
    fresh_sqlite,
)
from tests.integration.test_ledger_store import QUIET
from tests.integration.test_timestamps import tsa  # noqa: F401  (a fixture)
from tests.support import append_charts, init_practice, patient, set_env
from tests.tamper.test_tamper_backup import (
    assert_nothing_written,
    read_records,
    rewrite_manifest,
    write_records,
)
from verify.cosignature import NOTE_ED25519_TYPE, format_vkey, parse_vkey

WITNESS = "witness.example/w1"


@dataclass
class Witnessed:
    config: StoreConfig
    folder: Path  # its backup
    vkey: str  # the witness's verifier key
    size: int  # the cosigned and timestamped checkpoint


@pytest.fixture
def witnessed(
    store_config: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tsa: tuple[str, Path],  # noqa: F811
) -> Witnessed:
    """A practice whose checkpoint a witness cosigned and the TSA timestamped, backed up."""
    init_practice(store_config, monkeypatch)
    home = WitnessHome(tmp_path / "witness")
    home.create(WITNESS)
    ledger = Ledger(store_config, **QUIET)
    try:
        key = ledger.key_history()[-1]
        home.follow(format_vkey(ledger.origin, NOTE_ED25519_TYPE, key.public_key))
        append_charts(ledger, [patient() for _ in range(3)], events_per_chart=2)
        checkpoint = ledger.checkpointer.issue()
        vkey = home.vkey()
        with TestClient(app_from_home(home)) as client:
            pushed = push_to_witness(ledger.db, WitnessConfig("", parse_vkey(vkey)), client)
        url, root = tsa
        stamped = timestamp_latest(ledger.db, TsaConfig(url, root.read_bytes()))
        assert pushed == stamped == checkpoint.size
    finally:
        ledger.close()
    folder = tmp_path / "backup"
    set_env(store_config, monkeypatch)
    assert chartledger(["backup", "--out", str(folder)]) == 0
    return Witnessed(store_config, folder, vkey, checkpoint.size)


def evidence(config: StoreConfig) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    ledger = Ledger(config, **QUIET)
    try:
        with ledger.db.read() as c:
            c.execute("SELECT size, witness, line FROM ledger_cosignatures ORDER BY size, witness")
            cosignatures = [tuple(r) for r in c.fetchall()]
            c.execute("SELECT size, tsa, response FROM ledger_timestamps ORDER BY size, tsa")
            timestamps = [(n, t, bytes(r)) for n, t, r in c.fetchall()]
    finally:
        ledger.close()
    return cosignatures, timestamps


@pytest.fixture
def target(witnessed: Witnessed, tmp_path: Path, request: pytest.FixtureRequest) -> StoreConfig:
    """A fresh store of the source's kind to restore into."""
    if witnessed.config.database_url is None:
        return fresh_sqlite(tmp_path, "restored")
    return request.getfixturevalue("fresh_postgres")(tmp_path, "restored")


def restore(target: StoreConfig, source: Witnessed, monkeypatch: pytest.MonkeyPatch,
            *more: str) -> int:  # fmt: skip
    set_env(target, monkeypatch)
    return chartledger(
        ["restore", str(source.folder), "--master-key", str(source.config.master_key_path), *more]
    )


def refused(
    target: StoreConfig,
    source: Witnessed,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *more: str,
) -> str:
    capsys.readouterr()
    code = restore(target, source, monkeypatch, *more)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.count("\n") == 0
    assert_nothing_written(target)
    return err


# -- the round trip -----------------------------------------------------------------------------


def test_a_restored_store_holds_the_same_cosignatures_and_timestamps(
    witnessed: Witnessed,
    target: StoreConfig,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = json.loads((witnessed.folder / "manifest.json").read_text())
    assert manifest["version"] == 2
    assert manifest["counts"]["cosignatures"] == manifest["counts"]["timestamps"] == 1
    capsys.readouterr()
    assert restore(target, witnessed, monkeypatch, "--trusted-witness", witnessed.vkey) == 0
    assert "cosignatures: 1 (1 verified under a known witness key), timestamps: 1" in (
        capsys.readouterr().out
    )
    before = evidence(witnessed.config)
    assert [row[:2] for row in before[0]] == [(witnessed.size, WITNESS)]
    assert evidence(target) == before
    # The checkpoint file made from the restored store still verifies against the store,
    # cosigned by the witness.
    set_env(target, monkeypatch)
    capsys.readouterr()
    assert chartledger(["witness", "checkpoint-file", "--size", str(witnessed.size)]) == 0
    note = tmp_path / "cosigned.txt"
    note.write_text(capsys.readouterr().out)
    assert WITNESS in note.read_text()
    code = chartledger(["verify", "--checkpoint", str(note), "--trusted-witness", witnessed.vkey])
    assert code == 0, capsys.readouterr().out


def test_a_version_1_backup_without_them_still_restores(
    witnessed: Witnessed,
    target: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = witnessed.folder
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["version"] = 1
    for count in ("cosignatures", "timestamps"):
        (folder / f"{count}.msgpack").unlink()
        del manifest["counts"][count]
    manifest["files"] = [e for e in manifest["files"] if (folder / e["path"]).exists()]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert restore(target, witnessed, monkeypatch) == 0
    assert evidence(target) == ([], [])
    set_env(target, monkeypatch)
    assert chartledger(["verify"]) == 0


# -- an altered backup is refused ---------------------------------------------------------------


def flip_signature(line: str) -> str:
    prefix, _, blob = line.rpartition(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    return f"{prefix} {base64.b64encode(bytes(raw)).decode()}"


def edit(folder: Path, name: str, change: Any) -> None:
    path = folder / name
    records = read_records(path)
    change(records)
    write_records(path, records)
    rewrite_manifest(folder)


def test_an_altered_cosignature_is_refused_under_the_witness_key(
    witnessed: Witnessed,
    target: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def forge(records: list[dict[str, Any]]) -> None:
        records[0]["line"] = flip_signature(records[0]["line"])

    edit(witnessed.folder, "cosignatures.msgpack", forge)
    err = refused(target, witnessed, monkeypatch, capsys, "--trusted-witness", witnessed.vkey)
    assert (
        f"cosignatures.msgpack: the cosignature by '{WITNESS}' at size {witnessed.size} "
        "does not verify under the witness's key"
    ) in err


def test_the_witness_key_may_come_from_the_new_homes_witnesses_json(
    witnessed: Witnessed,
    target: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def forge(records: list[dict[str, Any]]) -> None:
        records[0]["line"] = flip_signature(records[0]["line"])

    edit(witnessed.folder, "cosignatures.msgpack", forge)
    target.home.mkdir(parents=True)
    config = {"witnesses": [{"url": "http://127.0.0.1:1", "vkey": witnessed.vkey}]}
    (target.home / "witnesses.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert restore(target, witnessed, monkeypatch) == 2
    assert "does not verify under the witness's key" in capsys.readouterr().err
    assert [p.name for p in target.home.iterdir()] == ["witnesses.json"]


@pytest.mark.parametrize(
    ("name", "change", "says"),
    [
        pytest.param(
            "cosignatures.msgpack",
            lambda r: r[0].update(size=r[0]["size"] - 1),
            "is of a checkpoint the backup does not hold",
            id="cosignature-moved-to-another-size",
        ),
        pytest.param(
            "cosignatures.msgpack",
            lambda r: r[0].update(line=r[0]["line"][:-8]),
            "is malformed",
            id="cosignature-cut-short",
        ),
        pytest.param(
            "cosignatures.msgpack",
            lambda r: r[0].update(witness="other.example/w2"),
            "is not a cosignature line by that witness",
            id="cosignature-filed-under-another-witness",
        ),
        pytest.param(
            "timestamps.msgpack",
            lambda r: r[0].update(response=r[0]["response"][:-40]),
            "is not an RFC 3161 response",
            id="timestamp-cut-short",
        ),
    ],
)
def test_a_malformed_or_misplaced_record_is_refused_without_any_witness_key(
    witnessed: Witnessed,
    target: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    change: Any,
    says: str,
) -> None:
    edit(witnessed.folder, name, change)
    err = refused(target, witnessed, monkeypatch, capsys)
    assert name in err and says in err


def test_a_timestamp_of_another_checkpoint_is_refused(
    witnessed: Witnessed,
    target: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A genuine timestamp refiled under a later checkpoint (one the TSA never saw)."""
    manifest = json.loads((witnessed.folder / "manifest.json").read_text())
    later = manifest["newest_checkpoint"]
    assert later > witnessed.size

    def refile(records: list[dict[str, Any]]) -> None:
        records[0]["size"] = later

    edit(witnessed.folder, "timestamps.msgpack", refile)
    err = refused(target, witnessed, monkeypatch, capsys)
    assert f"at size {later} is not of that checkpoint's body" in err
