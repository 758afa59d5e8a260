"""Every command's --help names the environment variables it reads (api/env_vars.py).

Three checks: the whole argparse tree, local and --server, ends each command's help with the
variables the registry says it reads, and the ones a person would look for are there; commands
run under an environment that records every read name only variables their help names; and no
source file reads a CHARTLEDGER_ variable the registry lacks, nor does the registry claim a file
reads one it does not.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.cli import build_parser, is_remote, main, names_server
from api.env_vars import BY_NAME, VARIABLES, leaves, read_by

ROOT = Path(__file__).resolve().parents[2]
# The installed code: what `chartledger` and the server run (tests and bench/ are not).
PACKAGES = ("api", "domain", "events", "legal_hold", "projections", "verify")
SECTION = "environment variables read:"


def commands() -> Iterator[tuple[str, bool, str]]:
    """(command words, whether remote, its --help) for every command of both trees."""
    for server in (False, True):
        for words, parser in leaves(build_parser(server)):
            yield " ".join(words), is_remote(words, parser), parser.format_help()


def helps() -> dict[tuple[str, bool], str]:
    return {(path, remote): text for path, remote, text in commands()}


def named(text: str) -> set[str]:
    """The variables a help's closing section names."""
    _, _, section = text.partition(SECTION)
    return {line.split(":")[0].strip() for line in section.strip().splitlines()}


def test_every_command_s_help_ends_with_the_variables_it_reads() -> None:
    seen = 0
    for path, remote, text in commands():
        assert SECTION in text, path
        expected = {v.name for v in read_by(path, remote)}
        if path == "status":
            expected |= {v.name for v in read_by(path, False)}
        assert named(text) == expected, path
        base = "CHARTLEDGER_SERVER" if remote else "CHARTLEDGER_HOME"
        assert base in named(text), path
        seen += 1
    assert seen > 60  # the whole tree was walked, both ways


# What a person looks for (issue 18): each command here must name at least these.
LOOKED_FOR = {
    ("init", False): {
        "CHARTLEDGER_OWNER_PASSWORD",
        "CHARTLEDGER_RETENTION_FLOOR_ADULT_YEARS",
        "CHARTLEDGER_HOME",
        "CHARTLEDGER_DATABASE_URL",
        "CHARTLEDGER_PBKDF2_ITERATIONS",
    },
    ("recover", True): {
        "CHARTLEDGER_RECOVERY_CODE",
        "CHARTLEDGER_NEW_PASSWORD",
        "CHARTLEDGER_SERVER",
        "CHARTLEDGER_TOKEN_FILE",
    },
    ("recover-approved", True): {"CHARTLEDGER_APPROVAL_CODE", "CHARTLEDGER_NEW_PASSWORD"},
    ("enroll", True): {"CHARTLEDGER_ENROLLMENT_CODE", "CHARTLEDGER_NEW_PASSWORD"},
    ("login", True): {"CHARTLEDGER_PASSWORD", "CHARTLEDGER_TOKEN_FILE"},
    ("password", True): {"CHARTLEDGER_PASSWORD", "CHARTLEDGER_NEW_PASSWORD"},
    ("serve", False): {
        "CHARTLEDGER_IDLE_TIMEOUT_SECONDS",
        "CHARTLEDGER_SMTP_HOST",
        "CHARTLEDGER_TRUSTED_PROXIES",
        "CHARTLEDGER_HOME",
    },
    ("holds remind", False): {"CHARTLEDGER_SMTP_HOST", "CHARTLEDGER_NOTICE_ADDRESSES"},
    ("witness serve", False): {"CHARTLEDGER_WITNESS_HOME"},
    ("users deactivate", True): {"CHARTLEDGER_SERVER", "CHARTLEDGER_TOKEN_FILE"},
    ("holds place", True): {"CHARTLEDGER_SERVER", "CHARTLEDGER_TOKEN_FILE"},
    ("matters open", False): {"CHARTLEDGER_HOME", "CHARTLEDGER_DATABASE_URL"},
    ("produce", False): {"CHARTLEDGER_HOME"},
    ("status", True): {"CHARTLEDGER_SERVER", "CHARTLEDGER_HOME"},
}


def test_the_variables_a_person_looks_for_are_in_the_help_they_read() -> None:
    found = helps()
    for (path, remote), wanted in LOOKED_FOR.items():
        assert wanted <= named(found[path, remote]), path
    # A remote command reads no store, and enroll keeps no token.
    assert "CHARTLEDGER_HOME" not in named(found["users list", True])
    assert "CHARTLEDGER_TOKEN_FILE" not in named(found["enroll", True])


class Recording(dict[str, str]):
    """An environment that notes every name read from it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)

    def setdefault(self, key: str, default: str = "") -> str:  # type: ignore[override]
        self.read.add(key)
        return super().setdefault(key, default)


NOWHERE = "http://127.0.0.1:9"  # nothing listens: remote commands fail after reading
SECRETS = {
    "CHARTLEDGER_OWNER_PASSWORD": "owner-password-1",
    "CHARTLEDGER_PASSWORD": "owner-password-1",
    "CHARTLEDGER_NEW_PASSWORD": "new-password-1",
    "CHARTLEDGER_RECOVERY_CODE": "AAAAA-AAAAA-AAAAA-AAAAA",
    "CHARTLEDGER_APPROVAL_CODE": "AAAAA-AAAAA-AAAAA-AAAAA",
    "CHARTLEDGER_ENROLLMENT_CODE": "AAAAA-AAAAA-AAAAA-AAAAA",
    "CHARTLEDGER_PBKDF2_ITERATIONS": "1000",
    "CHARTLEDGER_SERVER": NOWHERE,
}
# (arguments, the command's words): run in order, in one fresh SQLite home.
RUNS = [
    (["projections", "status"], "projections status"),  # no practice yet: refused
    (["init", "--owner", "olive", "--owner-name", "Olive"], "init"),
    (["holds", "remind"], "holds remind"),
    (["matters", "open", "--name", "M", "--number", "1", "--by", "olive"], "matters open"),
    (["export", "--all", "--out", "x", "--by", "nobody"], "export"),
    (["witness", "init", "--name", "w.example/w1"], "witness init"),
    (["status", "--local"], "status"),
    (["login", "olive", "--totp", "123456"], "login"),
    (["--server", NOWHERE, "recover", "olive"], "recover"),
    (["recover-approved", "olive"], "recover-approved"),
    (["enroll", "olive"], "enroll"),
    (["password"], "password"),
    (["recovery-codes"], "recovery-codes"),
    (["users", "list"], "users list"),
    (["--server", NOWHERE, "holds", "mine"], "holds mine"),
]


def test_what_commands_read_when_run_is_in_their_help(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = helps()
    base = {k: v for k, v in os.environ.items() if not k.startswith("CHARTLEDGER_")}
    reads: dict[str, set[str]] = {}
    for args, path in RUNS:
        env = Recording(
            {
                **base,
                **SECRETS,
                "CHARTLEDGER_HOME": str(tmp_path / "home"),
                "CHARTLEDGER_WITNESS_HOME": str(tmp_path / "witness"),
                "CHARTLEDGER_TOKEN_FILE": str(tmp_path / "token.json"),
            }
        )
        monkeypatch.setattr(os, "environ", env)
        main(args)
        capsys.readouterr()
        read = {name for name in env.read if name.startswith("CHARTLEDGER_")}
        assert read, path  # the recording saw the command's reads
        remote = is_remote(tuple(path.split()), _leaf(args, path))
        help_names = named(found[path, remote])
        assert read <= help_names, (path, read - help_names)
        reads[path] = read
    # The runs got as far as the reads that matter: secrets, the outbox's settings, the floor.
    assert {"CHARTLEDGER_RECOVERY_CODE", "CHARTLEDGER_NEW_PASSWORD"} <= reads["recover"]
    assert "CHARTLEDGER_SERVER" not in reads["recover"]  # --server was given
    assert "CHARTLEDGER_SERVER" in reads["recover-approved"]
    assert {"CHARTLEDGER_SMTP_HOST", "CHARTLEDGER_HOME"} <= reads["holds remind"]
    assert {"CHARTLEDGER_OWNER_PASSWORD", "CHARTLEDGER_RETENTION_FLOOR_ADULT_YEARS"} <= reads[
        "init"
    ]
    assert "CHARTLEDGER_WITNESS_HOME" in reads["witness init"]


def _leaf(args: list[str], path: str) -> Any:
    for words, parser in leaves(build_parser(names_server(args))):
        if " ".join(words) == path:
            return parser
    raise AssertionError(path)


def _source_files() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def names_in_source() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """Every CHARTLEDGER_ name a source file spells out whole, and every prefix an f-string
    builds one from, with the files that do."""
    whole: dict[str, set[str]] = {}
    prefixes: dict[str, set[str]] = {}
    for path in _source_files():
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                # A whole name; one ending in "_" is the start of an f-string (below).
                name = text.startswith("CHARTLEDGER_") and not text.endswith("_")
                if name and text.replace("_", "").isalnum() and text.upper() == text:
                    whole.setdefault(text, set()).add(where)
            if isinstance(node, ast.JoinedStr) and node.values:
                first = node.values[0]
                if (
                    isinstance(first, ast.Constant)
                    and isinstance(first.value, str)
                    and first.value.startswith("CHARTLEDGER_")
                    and " " not in first.value
                ):
                    prefixes.setdefault(first.value, set()).add(where)
    return whole, prefixes


def test_every_variable_the_source_reads_is_in_the_registry() -> None:
    whole, prefixes = names_in_source()
    assert "CHARTLEDGER_HOME" in whole  # the scan sees the source
    missing = sorted(set(whole) - set(BY_NAME))
    assert not missing, f"read in the source, missing from api/env_vars.py: {missing}"
    for prefix, files in prefixes.items():
        assert any(name.startswith(prefix) for name in BY_NAME), (prefix, files)


def test_the_registry_says_truly_where_each_variable_is_read() -> None:
    whole, prefixes = names_in_source()
    for v in VARIABLES:
        spelled = whole.get(v.name, set())
        built = {f for p, files in prefixes.items() if v.name.startswith(p) for f in files}
        for where in v.read_in:
            assert where in spelled | built, (v.name, where)
