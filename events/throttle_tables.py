"""The login throttle's tables in a PostgreSQL store (``api/shared_throttle.py``), so that servers
on several hosts count one practice's failed logins together. SQLite keeps them in a file of
their own in the practice home (``api/throttle.py``, ``login-throttle``): one host.

Not ledger tables, and no PHI: account ids (derived from usernames), client addresses, counts
and times (Unix seconds). Rows are updated and deleted as the throttle works, so the writer role
may UPDATE and DELETE them. The ledger keeps the evidence (``LoginFailed``, ``LockedOut``).
"""

from __future__ import annotations

TABLES = ("pair_failures", "account_failures", "known_addresses")


def table_statements(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return []
    return [
        "CREATE TABLE IF NOT EXISTS pair_failures (account text NOT NULL, address text NOT NULL, "
        "failures integer NOT NULL, last_at double precision NOT NULL, "
        "PRIMARY KEY (account, address))",
        "CREATE INDEX IF NOT EXISTS pair_failures_last_at ON pair_failures (last_at)",
        "CREATE TABLE IF NOT EXISTS account_failures (account text PRIMARY KEY, "
        "failures integer NOT NULL, last_at double precision NOT NULL)",
        "CREATE INDEX IF NOT EXISTS account_failures_last_at ON account_failures (last_at)",
        "CREATE TABLE IF NOT EXISTS known_addresses (account text NOT NULL, "
        "address text NOT NULL, at double precision NOT NULL, PRIMARY KEY (account, address))",
    ]
