"""The demo practice's logins as the demo set them, kept to be shown again only while they work.

``chartledger demo`` (and so ``make run``) prints each demo user's password and TOTP secret
every time it runs. A user may have changed their password since, had their authenticator
reset, or been deactivated; printing the demo's values then hands out credentials that fail.
So the values are written, when the demo sets them, to ``$CHARTLEDGER_HOME/demo-logins.json``
(mode 0600: they are passwords), with the password hash the account was given; each later run
compares the account as it stands now with that record, which needs no password hashing:

- same password hash, same TOTP secret, user active: the login is shown;
- otherwise it is named with what changed since the demo set it, and no secret is shown.

A login the file does not have (a demo loaded before this file existed, or the owner ``make
run`` made with ``chartledger init``) is checked once against the password it is said to have
(PBKDF2, slow by design) and remembered if it works.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from eventsourcing.application import AggregateNotFoundError

from api.auth import base32, from_base32, password_matches
from domain.credentials import Account, account_id
from domain.users import User
from events.ledger import Ledger
from events.private_files import write_private

FILE = "demo-logins.json"


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    totp_secret: bytes
    password_hash: str  # the account's when the demo set the password


@dataclass(frozen=True)
class Standing:
    """A demo login as it stands: ``changed`` says what no longer works (empty: it all does)."""

    login: DemoLogin
    roles: list[str]
    changed: list[str]


def path(home: Path) -> Path:
    return home / FILE


def remembered(home: Path) -> dict[str, DemoLogin]:
    """The logins the demo wrote down, by username (none if there is no file)."""
    try:
        raw = json.loads(path(home).read_text())
    except FileNotFoundError:
        return {}
    return {
        entry["username"]: DemoLogin(
            username=entry["username"],
            password=entry["password"],
            totp_secret=from_base32(entry["totp_secret"]),
            password_hash=entry["password_hash"],
        )
        for entry in raw["logins"]
    }


def remember(home: Path, logins: list[DemoLogin]) -> None:
    """Add ``logins`` to the file (replacing any of the same usernames), written whole: a 0600
    file beside, then renamed over the old one."""
    known = remembered(home)
    known.update({login.username: login for login in logins})
    entries = [
        {
            "username": login.username,
            "password": login.password,
            "totp_secret": base32(login.totp_secret),
            "password_hash": login.password_hash,
        }
        for login in known.values()
    ]
    data = json.dumps({"version": 1, "logins": entries}, indent=2).encode() + b"\n"
    part = path(home).with_name(f".{FILE}.{os.getpid()}.part")
    write_private(part, data)
    os.replace(part, path(home))


def _account(ledger: Ledger, username: str) -> tuple[Account, User] | None:
    try:
        account = ledger.repository.get(account_id(username))
        user = ledger.repository.get(account.user_id)
    except AggregateNotFoundError:
        return None
    return account, user


def standing(ledger: Ledger, login: DemoLogin) -> Standing:
    """How ``login`` stands against the account as it is now (no hashing: hashes compared)."""
    found = _account(ledger, login.username)
    if found is None:
        return Standing(login, [], ["account"])
    account, user = found
    changed = []
    if account.password_hash != login.password_hash:
        changed.append("password")
    if account.totp_secret != login.totp_secret:
        changed.append("authenticator")
    if not user.active:
        changed.append("deactivated")
    return Standing(login, sorted(user.roles), changed)


def first_look(ledger: Ledger, username: str, password: str) -> DemoLogin | None:
    """The login ``username``/``password`` with the account's TOTP secret, if that password
    works now (one PBKDF2 check); None if it does not, or there is no such account."""
    found = _account(ledger, username)
    if found is None:
        return None
    account, user = found
    if not user.active or account.totp_secret is None or account.password_hash is None:
        return None
    if not password_matches(password, account.password_hash):
        return None
    return DemoLogin(username, password, account.totp_secret, account.password_hash)


def line(seen: Standing) -> str:
    """One line of ``chartledger demo``'s list: the credentials only while they all work."""
    login, roles = seen.login, ",".join(seen.roles)
    if not seen.changed:
        secret = base32(login.totp_secret)
        return f"  {login.username:<10} {login.password:<20} {roles:<12} totp secret:  {secret}"
    if seen.changed == ["account"]:
        return f"  {login.username:<10} (no such account any more)"
    if seen.changed == ["deactivated"]:
        return f"  {login.username:<10} {'(deactivated)':<20} {roles}"
    what = " and ".join(c for c in seen.changed if c != "deactivated")
    said = f"{what} changed since the demo set it"
    if "deactivated" in seen.changed:
        said += "; deactivated"
    return f"  {login.username:<10} ({said}) {roles}"
