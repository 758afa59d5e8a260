"""Where a practice's ledger lives: CHARTLEDGER_HOME (keys, SQLite file) and
CHARTLEDGER_DATABASE_URL (PostgreSQL instead of the SQLite file); and how long a statement
waits for a lock (CHARTLEDGER_LOCK_TIMEOUT_SECONDS) and how often the log is signed while it
grows (CHARTLEDGER_CHECKPOINT_SECONDS)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

DEFAULT_HOME = "./var"
# Seconds a writer waits for a lock another holds before its write is refused as busy (503 with
# Retry-After): SQLite's busy timeout, PostgreSQL's lock_timeout (a PostgreSQL append then tries
# again for a few seconds more, events/postgres.py). CHARTLEDGER_LOCK_TIMEOUT_SECONDS changes it.
LOCK_TIMEOUT = 60


def pool_size(dialect: str) -> int:
    """Connections a store keeps open once concurrent work has opened them (more are opened
    when needed). The API server, with its pool of worker threads, asks for 16
    (CHARTLEDGER_POOL_SIZE): with fewer, every burst of requests reconnects, and on PostgreSQL
    each connection costs a round of authentication. Elsewhere a PostgreSQL store keeps 2, so
    many short-lived ledgers (a test run, scripts) do not hold the server's connections."""
    configured = os.environ.get("CHARTLEDGER_POOL_SIZE")
    if configured:
        return int(configured)
    return 16 if dialect == "sqlite" else 2


class ConfigError(ValueError):
    """The configured location or database URL cannot be used."""


@dataclass(frozen=True)
class PostgresLocation:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    schema: str

    def conninfo(self) -> str:
        parts = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password,
            "dbname": self.dbname,
        }
        return " ".join(f"{k}='{v}'" for k, v in parts.items() if v)


def parse_database_url(url: str) -> PostgresLocation:
    """``postgresql://user[:password]@host[:port]/dbname[?schema=name]``."""
    parsed = urlparse(url)
    if parsed.scheme not in ("postgresql", "postgres"):
        raise ConfigError("database URL must start with postgresql://")
    if not parsed.path.strip("/"):
        raise ConfigError("database URL must name a database: postgresql://host/dbname")
    schema = parse_qs(parsed.query).get("schema", ["public"])[0]
    if not schema.replace("_", "").isalnum():
        raise ConfigError("schema must be letters, digits and underscores")
    return PostgresLocation(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=unquote(parsed.username or "postgres"),
        password=unquote(parsed.password or ""),
        dbname=parsed.path.strip("/"),
        schema=schema,
    )


@dataclass(frozen=True)
class StoreConfig:
    home: Path
    database_url: str | None = None
    # Seconds a statement waits for a lock another connection holds before it fails (None:
    # LOCK_TIMEOUT, on both stores).
    lock_timeout: int | None = None
    # Seconds between the server's checkpoints while the log grows (None: the ledger's own).
    checkpoint_seconds: float | None = None
    # A read-only PostgreSQL replica of the store, for the audit and report queries
    # (events/replica.py); PostgreSQL stores only.
    replica_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreConfig:
        env = os.environ if env is None else env
        url = env.get("CHARTLEDGER_DATABASE_URL") or None
        if url is not None:
            parse_database_url(url)
        replica = env.get("CHARTLEDGER_REPLICA_DATABASE_URL") or None
        if replica is not None:
            if url is None:
                raise ConfigError(
                    "CHARTLEDGER_REPLICA_DATABASE_URL needs CHARTLEDGER_DATABASE_URL: "
                    "only a PostgreSQL store has replicas"
                )
            parse_database_url(replica)
        return cls(
            home=Path(env.get("CHARTLEDGER_HOME") or DEFAULT_HOME),
            database_url=url,
            lock_timeout=_whole_seconds(env, "CHARTLEDGER_LOCK_TIMEOUT_SECONDS"),
            checkpoint_seconds=_whole_seconds(env, "CHARTLEDGER_CHECKPOINT_SECONDS"),
            replica_url=replica,
        )

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def master_key_path(self) -> Path:
        return self.keys_dir / "master.key"

    def signing_key_path(self, key_id: str) -> Path:
        return self.keys_dir / f"signing-{key_id[:16]}.pem"

    @property
    def practice_path(self) -> Path:
        return self.home / "practice.json"

    @property
    def sqlite_path(self) -> Path:
        return self.home / "chartledger.sqlite3"

    def display_location(self) -> str:
        """Where the store is, without any password."""
        if self.database_url is None:
            return str(self.sqlite_path)
        pg = parse_database_url(self.database_url)
        return f"postgresql://{pg.user}@{pg.host}:{pg.port}/{pg.dbname} (schema {pg.schema})"

    def eventsourcing_env(self) -> dict[str, str]:
        if self.database_url is None:
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.sqlite_path),
                "SQLITE_LOCK_TIMEOUT": str(self.lock_timeout or LOCK_TIMEOUT),
                "APPLICATION_RECORDER_TOPIC": "events.sqlite:LedgerSQLiteRecorder",
            }
        pg = parse_database_url(self.database_url)
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": str(pg.port),
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password,
            "POSTGRES_SCHEMA": pg.schema,
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": str(self.lock_timeout or LOCK_TIMEOUT),
            "POSTGRES_POOL_SIZE": str(pool_size("postgres")),
            "POSTGRES_MAX_OVERFLOW": "16",
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",  # it would skip the writer lock
            "APPLICATION_RECORDER_TOPIC": "events.postgres:LedgerPostgresRecorder",
        }


def _whole_seconds(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name)
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ConfigError(f"{name} must be a whole number of seconds, at least 1")
    return int(raw)
