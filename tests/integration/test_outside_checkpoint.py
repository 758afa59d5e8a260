"""``verify store --checkpoint`` and ``chartledger verify --checkpoint`` from the command line,
a practice's own origin, and the checkpoint signed by both keys after a rotation (both stores)."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.cli import main as chartledger
from events.config import StoreConfig
from tests.support import set_env
from verify.__main__ import main as verify_main
from verify.checkpoint import parse_note
from verify.cosignature import COSIGNATURE_TYPE, format_vkey
from verify.witness import read_outside_checkpoint

ORIGIN = "records.example-clinic.org/log"


def cli(
    config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *args: str,
) -> tuple[int, str, str]:
    set_env(config, monkeypatch)
    capsys.readouterr()
    code = chartledger(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def store_verify(
    config: StoreConfig, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    where = (
        ["--sqlite", str(config.sqlite_path)]
        if config.database_url is None
        else ["--database-url", config.database_url]
    )
    capsys.readouterr()
    code = verify_main(["store", *where, "--workers", "1", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def practice(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> StoreConfig:
    code, out, err = cli(
        store_config, monkeypatch, capsys, "init", "--name", "P", "--origin", ORIGIN
    )
    assert code == 0, err
    assert f"origin:       {ORIGIN}" in out
    return store_config


def test_a_practice_names_its_own_origin(
    practice: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = cli(practice, monkeypatch, capsys, "checkpoint")
    assert code == 0 and parse_note(out.encode()).origin == ORIGIN
    code, out, _ = cli(practice, monkeypatch, capsys, "witness", "log-key")
    assert code == 0 and out.startswith(ORIGIN + "+")
    assert store_verify(practice, capsys)[0] == 0


@pytest.mark.parametrize("origin", ["has space", "plus+sign", ""])
def test_an_origin_a_signature_line_cannot_carry_is_refused(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    origin: str,
) -> None:
    code, _, err = cli(store_config, monkeypatch, capsys, "init", "--origin", origin)
    assert code == 2 and err.count("\n") == 1 and "--origin" in err
    assert not store_config.practice_path.exists()


def test_after_a_rotation_the_first_checkpoint_is_signed_by_both_keys(
    practice: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    assert cli(practice, monkeypatch, capsys, "rotate-key")[0] == 0
    code, text, _ = cli(practice, monkeypatch, capsys, "witness", "checkpoint-file")
    assert code == 0
    checkpoint = parse_note(text.encode())
    assert [name for name, _, _ in checkpoint.signatures] == [ORIGIN, ORIGIN]
    (held := tmp_path / "held.txt").write_text(text)
    assert store_verify(practice, capsys, "--checkpoint", str(held))[0] == 0
    assert cli(practice, monkeypatch, capsys, "verify", "--checkpoint", str(held))[0] == 0


def test_a_missing_cosignature_by_a_trusted_witness_fails(
    practice: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    code, text, _ = cli(practice, monkeypatch, capsys, "witness", "checkpoint-file")
    (held := tmp_path / "held.txt").write_text(text)
    size = read_outside_checkpoint(text.encode()).checkpoint.size
    trusted = format_vkey("witness.example/w1", COSIGNATURE_TYPE, bytes(range(32)))
    code, out, _ = store_verify(
        practice, capsys, "--checkpoint", str(held), "--trusted-witness", trusted
    )
    assert code == 1
    where = f"FAIL: outside checkpoint at size {size}"
    assert f"{where}: no cosignature by trusted witness witness.example/w1" in out


def test_checkpoint_files_that_cannot_be_read_are_misuse(
    practice: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    (garbage := tmp_path / "garbage.txt").write_text("not a checkpoint\n")
    for args in (
        ["--checkpoint", str(tmp_path / "absent.txt")],
        ["--checkpoint", str(garbage)],
        ["--trusted-witness", "nonsense"],
    ):
        code, out, err = store_verify(practice, capsys, *args)
        assert (code, out) == (2, ""), args
        assert err.count("\n") == 1, err
        code, out, err = cli(practice, monkeypatch, capsys, "verify", *args)
        assert (code, out) == (2, ""), args
        assert err.count("\n") == 1, err


def test_a_witnesses_file_that_cannot_be_used_is_misuse(
    practice: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (practice.home / "witnesses.json").write_text('{"witnesses": [{"url": "http://x/"}]}')
    code, out, err = cli(practice, monkeypatch, capsys, "checkpoint")
    assert (code, out) == (2, "") and err.count("\n") == 1 and "witnesses.json" in err
