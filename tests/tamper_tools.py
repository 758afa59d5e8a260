"""What an attacker with the database superuser's powers does: bypass the triggers, edit rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from events.config import parse_database_url
from events.ledger import Ledger
from verify.canonical import decode, encode


@contextmanager
def raw_sql(ledger: Ledger) -> Iterator[Any]:
    """A connection to the real tables with the append-only triggers out of the way."""
    config = ledger.config
    if config.database_url is None:
        conn = sqlite3.connect(config.sqlite_path, isolation_level=None)
        triggers = conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for (name,) in triggers:
            conn.execute(f'DROP TRIGGER "{name}"')
        try:
            yield conn
        finally:
            conn.close()
        return
    location = parse_database_url(config.database_url)
    with psycopg.connect(location.conninfo(), autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{location.schema}"')
        conn.execute("SET session_replication_role = replica")  # superuser: triggers off
        yield conn


def rewrite_leaf_link(ledger: Ledger, position: int) -> None:
    """Point the first link of the leaf at ``position`` one position further back."""
    with raw_sql(ledger) as conn:
        (leaf,) = conn.execute(
            f"SELECT leaf FROM ledger_leaves WHERE position = {int(position)}"
        ).fetchone()
        value = decode(bytes(leaf))
        subject, seq, prev = value["links"][0]
        value["links"][0] = [subject, seq, (prev or 1) - 1]
        forged = encode(value)
        placeholder = "?" if isinstance(conn, sqlite3.Connection) else "%s"
        conn.execute(
            f"UPDATE ledger_leaves SET leaf = {placeholder} WHERE position = {placeholder}",
            (forged, position),
        )
