"""Every environment variable Chartledger reads: what it means, where it is read, and which
``chartledger`` commands read it. Each command's ``--help`` ends with the variables it reads,
generated from this one table (``describe``), so a command's help cannot forget one;
tests/unit/test_cli_environment.py fails on a variable read in the source but missing here.

A command is named by its words as typed (``holds remind``, ``users create``); ``LOCAL`` stands
for every command that opens the practice's store, ``REMOTE`` for every one run against a
server (``--server``), ``SERVE`` for ``serve``'s application settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from dataclasses import dataclass

LOCAL, REMOTE = "<local>", "<remote>"


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    read_in: tuple[str, ...]  # the source files that read it
    commands: tuple[str, ...]  # command paths, LOCAL or REMOTE
    not_by: tuple[str, ...] = ()  # commands excluded from LOCAL or REMOTE


_STORE = ("events/config.py",)
_SETTINGS = ("api/settings.py",)
# Commands that build the application's settings (api/settings.py, Settings.from_env).
_SETTINGS_BY = ("init", "demo", "serve")
_SECRET_PROMPT = "or asked on the terminal"

VARIABLES: tuple[Variable, ...] = (
    # -- the practice's store (every local command) ----------------------------------------
    Variable(
        "CHARTLEDGER_HOME",
        "the practice's folder: keys, practice.json, SQLite store (default ~/.chartledger)",
        _STORE,
        (LOCAL,),
    ),
    Variable(
        "CHARTLEDGER_DATABASE_URL",
        "a PostgreSQL store's URL (default: SQLite in the home)",
        _STORE,
        (LOCAL,),
    ),
    Variable(
        "CHARTLEDGER_REPLICA_DATABASE_URL",
        "a read-only PostgreSQL replica for audit and report queries (docs/DEPLOYMENT.md)",
        _STORE,
        (LOCAL,),
    ),
    Variable(
        "CHARTLEDGER_LOCK_TIMEOUT_SECONDS",
        "seconds a write waits for another's lock",
        _STORE,
        (LOCAL,),
    ),
    Variable(
        "CHARTLEDGER_CHECKPOINT_SECONDS",
        "seconds between the server's checkpoints",
        _STORE,
        (LOCAL,),
    ),
    Variable(
        "CHARTLEDGER_POOL_SIZE",
        "store connections kept open (serve sets 16)",
        ("events/config.py", "api/cli.py"),
        (LOCAL,),
    ),
    # -- the server's settings (api/settings.py) ---------------------------------------------
    Variable("CHARTLEDGER_PBKDF2_ITERATIONS", "password hashing rounds", _SETTINGS, _SETTINGS_BY),
    Variable(
        "CHARTLEDGER_PUBLISH_LOG",
        "yes: anyone may read /checkpoint and the tiles (default: auditors and owners)",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable(
        "CHARTLEDGER_NOTICE_EVERY_SECONDS",
        "seconds between the server's rounds of hold notices",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable(
        "CHARTLEDGER_IDLE_TIMEOUT_SECONDS", "a session's idle timeout", _SETTINGS, _SETTINGS_BY
    ),
    Variable(
        "CHARTLEDGER_ENROLLMENT_CODE_LIFETIME_SECONDS",
        "how long an enrollment code works",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable(
        "CHARTLEDGER_DISPOSAL_APPROVAL_HOURS",
        "how long a disposal proposal waits",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable(
        "CHARTLEDGER_IDEMPOTENCY_KEY_LIFETIME_SECONDS",
        "how long an Idempotency-Key is kept",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable(
        "CHARTLEDGER_LOGIN_FAILURES_BEFORE_WAIT",
        "failed logins before a wait",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable("CHARTLEDGER_LOGIN_FIRST_DELAY_SECONDS", "the first wait", _SETTINGS, _SETTINGS_BY),
    Variable("CHARTLEDGER_LOGIN_MAX_DELAY_SECONDS", "the longest wait", _SETTINGS, _SETTINGS_BY),
    Variable(
        "CHARTLEDGER_LOGIN_FORGET_AFTER_SECONDS",
        "when failures are forgotten",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable(
        "CHARTLEDGER_TRUSTED_PROXIES",
        "proxies whose X-Forwarded-For is believed",
        _SETTINGS,
        _SETTINGS_BY,
    ),
    Variable("CHARTLEDGER_MAX_BODY_BYTES", "largest request body", _SETTINGS, _SETTINGS_BY),
    Variable("CHARTLEDGER_MAX_UPLOAD_BYTES", "largest upload", _SETTINGS, _SETTINGS_BY),
    Variable("CHARTLEDGER_MAX_HEADER_BYTES", "largest request head", _SETTINGS, _SETTINGS_BY),
    Variable("CHARTLEDGER_MAX_JSON_DEPTH", "deepest JSON nesting", _SETTINGS, _SETTINGS_BY),
    Variable(
        "CHARTLEDGER_PUBLIC_BASE_URL",
        "the server's URL as clients reach it, behind a proxy (default: each request's own);"
        " local exports name it in their manifest's request",
        (*_SETTINGS, "projections/ehi_export_cli.py"),
        (*_SETTINGS_BY, "export"),
    ),
    Variable(
        "CHARTLEDGER_EXPORT_DOCS_URL",
        "the public URL of the EHI export's format, in every export (default: the server's"
        " own /docs/EHI_EXPORT.md)",
        (*_SETTINGS, "projections/ehi_export_cli.py"),
        (*_SETTINGS_BY, "export"),
    ),
    # -- hold notices by e-mail (legal_hold/notices.py): the server and `holds remind` --------
    *(
        Variable(
            f"CHARTLEDGER_SMTP_{part}",
            meaning,
            ("legal_hold/notices.py",),
            ("serve", "holds remind"),
        )
        for part, meaning in (
            ("HOST", "send hold notices by SMTP through this host (default: the outbox folder)"),
            ("PORT", "its port (587)"),
            ("FROM", "the notices' sender"),
            ("USER", "the SMTP login"),
            ("PASSWORD", "the SMTP password"),
            ("STARTTLS", "0 to send without STARTTLS"),
        )
    ),
    Variable(
        "CHARTLEDGER_NOTICE_ADDRESSES",
        "JSON file of custodians' e-mail addresses",
        ("legal_hold/notices.py",),
        ("serve", "holds remind"),
    ),
    # -- init ------------------------------------------------------------------------------------
    Variable(
        "CHARTLEDGER_OWNER_PASSWORD",
        f"the first owner's password ({_SECRET_PROMPT})",
        ("api/cli.py",),
        ("init",),
    ),
    *(
        Variable(
            f"CHARTLEDGER_RETENTION_FLOOR_{part}",
            f"default for --floor-{option}",
            ("api/cli.py",),
            ("init",),
        )
        for part, option in (
            ("ADULT_YEARS", "adult-years"),
            ("MINOR_YEARS", "minor-years"),
            ("MAJORITY_AGE", "majority-age"),
        )
    ),
    # -- witnesses ----------------------------------------------------------------------------
    Variable(
        "CHARTLEDGER_WITNESS_HOME",
        "the witness's folder (default for --home)",
        ("api/witness/home.py",),
        ("witness init", "witness follow", "witness serve"),
    ),
    # -- the thin client (--server) ------------------------------------------------------------
    Variable(
        "CHARTLEDGER_SERVER",
        "the server when --server is not given (default http://127.0.0.1:8000)",
        ("api/cli.py",),
        (REMOTE,),
    ),
    Variable(
        "CHARTLEDGER_TOKEN_FILE",
        "where the session token is kept (default ~/.chartledger-token, mode 0600)",
        ("api/cli.py",),
        (REMOTE,),
        not_by=("enroll",),
    ),
    Variable(
        "CHARTLEDGER_PASSWORD",
        f"your current password ({_SECRET_PROMPT})",
        ("api/cli.py", "api/remote_cli.py"),
        ("login", "password", "recovery-codes"),
    ),
    Variable(
        "CHARTLEDGER_NEW_PASSWORD",
        f"your new password ({_SECRET_PROMPT})",
        ("api/remote_cli.py",),
        ("enroll", "password", "recover", "recover-approved"),
    ),
    Variable(
        "CHARTLEDGER_ENROLLMENT_CODE",
        f"the enrollment code ({_SECRET_PROMPT})",
        ("api/remote_cli.py",),
        ("enroll",),
    ),
    Variable(
        "CHARTLEDGER_RECOVERY_CODE",
        f"one of your recovery codes ({_SECRET_PROMPT})",
        ("api/remote_cli.py",),
        ("recover",),
    ),
    Variable(
        "CHARTLEDGER_APPROVAL_CODE",
        f"another owner's approval code ({_SECRET_PROMPT})",
        ("api/remote_cli.py",),
        ("recover-approved",),
    ),
)

BY_NAME = {v.name: v for v in VARIABLES}


def read_by(path: str, remote: bool) -> list[Variable]:
    """The variables the command ``path`` (its words, e.g. ``holds remind``) reads, run against
    a server (``remote``) or on the local store."""
    found = []
    for v in VARIABLES:
        mode = REMOTE if remote else LOCAL
        if path in v.commands or (mode in v.commands and path not in v.not_by):
            found.append(v)
    return found


def describe(variables: list[Variable]) -> str:
    lines = ["environment variables read:"]
    lines += [f"  {v.name}: {v.meaning}" for v in variables]
    return "\n".join(lines)


def leaves(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command (a parser with no subcommands under it), with its words."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield words, parser
        return
    for action in subs:
        for name, child in action.choices.items():
            yield from leaves(child, (*words, name))


def document(parser: argparse.ArgumentParser, is_remote: object) -> None:
    """Give every command under ``parser`` an epilog naming the variables it reads;
    ``is_remote(words, parser)`` tells whether a command runs against a server."""
    for words, leaf in leaves(parser):
        path = " ".join(words)
        remote = bool(is_remote(words, leaf))  # type: ignore[operator]
        both = path == "status"  # ``status`` is remote, ``status --local`` reads the home
        variables = read_by(path, remote)
        if both:
            variables += [v for v in read_by(path, False) if v not in variables]
        leaf.epilog = describe(variables)
        # Keep the epilog's lines as written.
        leaf.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "Each command's --help ends with the environment variables it reads.\n"
        + describe(read_by("", False)).replace("read:", "read by every local command:")
        + "\n"
        + describe(read_by("", True)).replace("read:", "read by every remote command:")
    )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
