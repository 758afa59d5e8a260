"""`chartledger` and `python -m verify` as an operator meets them: what init leaves on disk, and
one line with exit status 2 for every misuse, with nothing half-made left behind."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from api.cli import main as chartledger
from events.config import StoreConfig
from events.ledger import Ledger
from tests.support import Chart, init_practice, patient, set_env
from verify.__main__ import main as verify_main

REPO = Path(__file__).resolve().parents[2]
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/test"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def one_line(text: str) -> str:
    """The only line of ``text``; fails if there are more or none."""
    lines = text.splitlines()
    assert len(lines) == 1, text
    return lines[0]


# -- init --------------------------------------------------------------------------------------


def test_init_creates_private_key_files_and_says_where_they_are_and_to_back_them_up(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    set_env(store_config, monkeypatch)
    assert chartledger(["init", "--name", "Elm Street Clinic"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    keys = store_config.keys_dir
    (signing,) = keys.glob("signing-*.pem")
    for secret in (store_config.master_key_path, signing, store_config.practice_path):
        assert mode(secret) == 0o600, secret
    assert mode(keys) & 0o077 == 0  # nobody else may even list the keys
    assert len(store_config.master_key_path.read_bytes()) == 32
    assert f"master key:   {store_config.master_key_path} (mode 0600)" in out
    assert f"signing key:  {signing} (mode 0600)" in out
    assert "Back up the keys folder now and keep it apart from the database" in out
    ledger = Ledger(store_config)
    try:
        genesis = ledger.key_history()[0].key_id
    finally:
        ledger.close()
    assert f"key id:       {genesis}" in out
    assert signing.name == f"signing-{genesis[:16]}.pem"
    assert "Elm Street Clinic" in out


def test_a_second_init_exits_2_with_one_line_and_leaves_the_practice_as_it_was(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init_practice(store_config, monkeypatch)
    files = {p: p.read_bytes() for p in store_config.home.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert chartledger(["init"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err) == f"chartledger: error: a practice already exists at {store_config.home}"
    assert {p: p.read_bytes() for p in files} == files
    assert chartledger(["verify"]) == 0


def test_init_over_a_ledger_whose_practice_files_are_gone_refuses_and_keeps_the_ledger(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # The practice files went missing (a lost or half-restored home) but the ledger is there:
    # init must refuse, and must not take the ledger with it.
    init_practice(store_config, monkeypatch)
    ledger = Ledger(store_config)
    try:
        for _ in range(3):
            ledger.save(Chart(subjects=(patient(),), text="a record"))
    finally:
        ledger.close()
    aside = tmp_path / "aside"
    aside.mkdir()
    shutil.move(store_config.practice_path, aside / "practice.json")
    shutil.move(store_config.keys_dir, aside / "keys")
    capsys.readouterr()
    assert chartledger(["init"]) == 2
    expected = (
        "this database already holds a practice's key history"
        if store_config.database_url
        else f"a ledger already exists at {store_config.sqlite_path} without its practice "
        "files: restore the keys folder and practice.json from backup"
    )
    assert one_line(capsys.readouterr().err) == f"chartledger: error: {expected}"
    assert not store_config.practice_path.exists()
    assert list(store_config.keys_dir.glob("*")) == []
    if store_config.database_url is None:
        assert store_config.sqlite_path.exists(), "init deleted the practice's ledger"

    if store_config.keys_dir.exists():  # refused before it made anything, on SQLite
        store_config.keys_dir.rmdir()
    shutil.move(aside / "practice.json", store_config.practice_path)
    shutil.move(aside / "keys", store_config.keys_dir)
    assert chartledger(["verify"]) == 0
    assert ": 4 leaves, 4 events, " in capsys.readouterr().out


# -- misuse: one line, exit 2 ------------------------------------------------------------------


@pytest.mark.parametrize("command", ["checkpoint", "verify", "rotate-key"])
def test_commands_before_init_exit_2_with_one_line_pointing_at_init(
    store_config: StoreConfig,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    set_env(store_config, monkeypatch)
    assert chartledger([command]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err) == (
        f"chartledger: error: no practice at {store_config.home}: run `chartledger init` first"
    )
    assert not store_config.sqlite_path.exists()  # and no empty store made on the way


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://x", "database URL must start with postgresql://"),
        ("postgresql://127.0.0.1:5432", "database URL must name a database"),
        ("postgresql://h/db?schema=a;drop", "schema must be letters, digits and underscores"),
    ],
)
@pytest.mark.parametrize("command", ["init", "verify"])
def test_a_bad_database_url_exits_2_with_one_line_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    url: str,
    message: str,
    command: str,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("CHARTLEDGER_HOME", str(home))
    monkeypatch.setenv("CHARTLEDGER_DATABASE_URL", url)
    assert chartledger([command]) == 2
    assert one_line(capsys.readouterr().err).startswith(f"chartledger: error: {message}")
    assert not home.exists()


def test_a_practice_opened_as_the_other_kind_of_store_exits_2_and_makes_no_empty_store(
    store_config: StoreConfig, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    init_practice(store_config, monkeypatch)
    if store_config.database_url is None:
        monkeypatch.setenv("CHARTLEDGER_DATABASE_URL", UNREACHABLE)
        expected = f"keeps its ledger in {store_config.sqlite_path}: unset CHARTLEDGER_DATABASE_URL"
    else:
        monkeypatch.delenv("CHARTLEDGER_DATABASE_URL")
        expected = "keeps its ledger in PostgreSQL: set CHARTLEDGER_DATABASE_URL"
    capsys.readouterr()
    assert chartledger(["verify"]) == 2
    line = one_line(capsys.readouterr().err)
    assert line == f"chartledger: error: the practice at {store_config.home} {expected}"
    if store_config.database_url is not None:
        assert not store_config.sqlite_path.exists()


# -- init against a PostgreSQL that is not there -------------------------------------------


@pytest.fixture(scope="module")
def unreachable_init(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """`chartledger init` run once against a PostgreSQL port nothing listens on."""
    home = tmp_path_factory.mktemp("unreachable") / "home"
    env = dict(os.environ)
    env.update(
        CHARTLEDGER_HOME=str(home),
        CHARTLEDGER_DATABASE_URL=UNREACHABLE,
        POSTGRES_CONNECT_TIMEOUT="2",  # eventsourcing's default would wait 30 s
    )
    result = subprocess.run(
        [sys.executable, "-m", "api.cli", "init"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return home, result


def test_init_against_an_unreachable_postgresql_fails_and_leaves_no_practice_behind(
    unreachable_init: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    home, result = unreachable_init
    assert result.returncode != 0, result.stdout
    assert not (home / "practice.json").exists()
    assert not (home / "keys" / "master.key").exists()
    assert list((home / "keys").glob("signing-*.pem")) == []
    assert "Initialised practice" not in result.stdout


def test_init_against_an_unreachable_postgresql_says_so_in_one_line_with_exit_2(
    unreachable_init: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    # api/cli.py's contract: exit 1 means "the store failed verification"; every other
    # failure is one line and exit 2, never a traceback.
    _, result = unreachable_init
    line = one_line(result.stderr)
    assert line.startswith("chartledger: error: ") and "127.0.0.1" in line, result.stderr
    assert result.returncode == 2


# -- python -m verify --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "python -m verify: error: the following arguments are required: command"),
        (
            ["store"],
            "python -m verify store: error: one of the arguments --database-url --sqlite "
            "is required",
        ),
        (["check"], "python -m verify: error: argument command: invalid choice: 'check'"),
    ],
)
def test_python_m_verify_without_proper_arguments_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        verify_main(args)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err).startswith(message)


def test_python_m_verify_on_a_missing_sqlite_file_exits_2_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.sqlite3"
    assert verify_main(["store", "--sqlite", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert one_line(err) == (
        f"python -m verify: error: cannot read a ledger at {missing}: unable to open database file"
    )
    assert not missing.exists()


def test_python_m_verify_on_a_file_that_is_not_a_ledger_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for name, content in [("empty.sqlite3", b""), ("notes.txt", b"not a database\n" * 100)]:
        path = tmp_path / name
        path.write_bytes(content)
        assert verify_main(["store", "--sqlite", str(path)]) == 2
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"python -m verify: error: cannot read a ledger at {path}: ")
        assert path.read_bytes() == content


def test_output_cut_short_by_its_reader_ends_quietly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`chartledger ... | head -1`: once the reader has gone, exit 1, no traceback."""
    monkeypatch.setenv("CHARTLEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CHARTLEDGER_DATABASE_URL", raising=False)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone
    with open(write_end, "w", buffering=1) as stdout:  # flushed line by line, as a pipe fills
        monkeypatch.setattr(sys, "stdout", stdout)
        assert chartledger(["init", "--name", "Piped"]) == 1
