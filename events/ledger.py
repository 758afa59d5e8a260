"""The ledger application: eventsourcing's Application wired to the ledger's mapper and recorders.

Everything appended through ``Ledger.save`` is sealed, hashed, linked and logged in one
transaction; checkpoints follow on the configured cadence.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import BaseAggregate
from eventsourcing.persistence import IntegrityError, Mapper, Recording

from events import idempotency
from events.checkpoints import Checkpointer
from events.config import StoreConfig
from events.db import Cursor, Database
from events.encoding import CanonicalTranscoder, LedgerMapper
from events.group_commit import GroupCommit
from events.hot import HotAggregates
from events.keys import SigningKey, new_master_key, read_master_key, write_secret
from events.private_files import private_dir, tighten, touch_private
from events.replica import Replica
from events.sealing import DataKeys
from events.store import StaleDataKey
from events.witnessing import Outward, Sender
from verify.canonical import format_timestamp
from verify.cosignature import check_name
from verify.keyhistory import KeyStatement, parse_statement, statement_bytes


class NotInitialised(LookupError):
    """No practice has been initialised at the configured home."""


class StoreMismatch(LookupError):
    """CHARTLEDGER_DATABASE_URL names a different kind of store than the practice uses."""


class AlreadyInitialised(FileExistsError):
    """``init`` would overwrite an existing practice or store."""


HOT_CACHE_SIZE = 4096


class Ledger(Application):
    name = "Chartledger"

    def __init__(
        self,
        config: StoreConfig,
        *,
        every_events: int | None = None,
        every_seconds: float | None = None,
    ) -> None:
        self.config = config
        if not config.practice_path.exists():
            raise NotInitialised(f"no practice at {config.home}: run `chartledger init` first")
        self.practice = json.loads(config.practice_path.read_text())
        self.origin: str = self.practice["origin"]
        _check_store_kind(config, self.practice)
        self.master_key = read_master_key(config.master_key_path)
        if config.database_url is None:
            # SQLite would create the file 0644 less the umask, and its -wal and -shm with the
            # file's mode; the views in it hold PHI in clear, so it is made 0600 first (and one
            # an older version made 0644 is set to 0600).
            touch_private(config.sqlite_path)
            for suffix in ("", "-wal", "-shm"):
                tighten(config.sqlite_path.with_name(config.sqlite_path.name + suffix))
        super().__init__(env=config.eventsourcing_env())
        self.db = Database(self.factory.datastore)  # type: ignore[attr-defined]
        self.hot = HotAggregates(self.db, self.mapper, HOT_CACHE_SIZE)
        self.group_commit = GroupCommit(self)
        if every_seconds is None:
            every_seconds = config.checkpoint_seconds  # CHARTLEDGER_CHECKPOINT_SECONDS
        self.checkpointer = Checkpointer(
            self.db,
            self.origin,
            self.signing_key,
            **{
                k: v
                for k, v in (("every_events", every_events), ("every_seconds", every_seconds))
                if v is not None
            },
        )
        # Audit and report queries may be read from a replica (CHARTLEDGER_REPLICA_DATABASE_URL).
        self.replica = None if config.replica_url is None else Replica(config.replica_url)
        outward = Outward.load(config.home)
        self.sender = None if outward.empty else Sender(self.db, outward)
        if self.sender is not None:
            self.checkpointer.on_issued = self.sender.kick

    def close(self) -> None:
        sender = getattr(self, "sender", None)
        if sender is not None:
            sender.stop()
        replica = getattr(self, "replica", None)
        if replica is not None:
            replica.close()
        super().close()

    def reports_db(self, view: str) -> Database:
        """Where a report reading ``view`` is read: the replica once it is as far on as the
        primary (events/replica.py), else the store itself."""
        if self.replica is None:
            return self.db
        return self.replica.db_for(self.db, view)

    def construct_mapper(self) -> Mapper[uuid.UUID]:
        db = Database(self.factory.datastore)  # type: ignore[attr-defined]
        self.data_keys = DataKeys(db, self.master_key)
        return LedgerMapper(CanonicalTranscoder(), self.data_keys)

    def signing_key(self, key_id: str) -> SigningKey:
        path = self.config.signing_key_path(key_id)
        if not path.exists():
            raise NotInitialised(f"signing key {key_id[:16]}… is not in {self.config.keys_dir}")
        return SigningKey.load(path)

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        """Append; a checkpoint that has fallen due is signed in the same transaction."""
        inner: Callable[[Cursor, list[int]], None] | None = kwargs.pop("after_append", None)
        # A keyed request's first append carries its idempotency key (events/idempotency.py).
        inner, claim = idempotency.with_claim(inner)
        try:
            return self._save(objs, kwargs, inner, claim)
        except IntegrityError:
            # PostgreSQL's recorder tries an append again when the connection dropped, also
            # when it dropped during a COMMIT that went through; the second try then collides
            # with the first. If the key's row is this request's, the first try committed:
            # the write was kept, and there is no conflict to answer (issue 23).
            if claim is None or not self._kept(claim):
                raise
            claim.claimed = True
            return []

    def _kept(self, claim: idempotency.Claim) -> bool:
        with self.db.read() as c:
            return idempotency.kept(c, claim)

    def _save(
        self,
        objs: tuple[Any, ...],
        kwargs: dict[str, Any],
        inner: Callable[[Cursor, list[int]], None] | None,
        claim: idempotency.Claim | None,
    ) -> Any:
        signed: list[int] = []
        with self.checkpoint_when_due(signed):
            # Application.save (eventsourcing 9.5.6, pinned), with the events collected by
            # _Collected: the same steps, in the same order.
            processing_event = _Collected()
            processing_event.collect_events(
                *objs, after_append=self.checkpoint_hook(signed, inner), **kwargs
            )
            recordings = self._record(processing_event)
            if claim is not None and recordings:
                claim.claimed = True  # committed, its row with it
            self._take_snapshots(processing_event)
            self._notify(recordings)
            self.notify(processing_event.events)  # type: ignore[no-untyped-call]
            return recordings

    def checkpoint_hook(
        self, signed: list[int], inner: Callable[[Cursor, list[int]], None] | None = None
    ) -> Callable[[Cursor, list[int]], None]:
        """The last step of an append's transaction: ``inner``, then a checkpoint if one is
        due (its size noted in ``signed``)."""

        def after_append(cursor: Cursor, appended: list[int]) -> None:
            if inner is not None:
                inner(cursor, appended)
            if appended:
                size = self.checkpointer.issue_if_due(cursor, appended[-1] + 1)
                if size is not None:
                    signed.append(size)

        return after_append

    @contextmanager
    def checkpoint_when_due(self, signed: list[int]) -> Iterator[None]:
        """Around an append using ``checkpoint_hook``: tell the checkpointer whether the
        checkpoint signed inside it committed."""
        try:
            yield
        except BaseException:
            if signed:
                self.checkpointer.rolled_back()
            raise
        if signed:
            self.checkpointer.committed(signed[-1])

    def private_id(self, purpose: str, value: str) -> uuid.UUID:
        """A stable id for a low-entropy value (an MRN, say) that only the practice can compute:
        a keyed hash under the master key, so the id, which is public metadata, cannot be
        turned back into the value by trying every candidate."""
        message = b"chartledger private id\x00" + purpose.encode() + b"\x00" + value.encode()
        digest = hmac.new(self.master_key, message, hashlib.sha256).digest()
        return uuid.UUID(bytes=digest[:16], version=4)

    def save_together(self, *objs: Any) -> None:
        """As ``save``, for new aggregates whose events cannot conflict with anyone's: shares
        one transaction with the other threads saving this way at the same moment."""
        self.group_commit.save(*objs)

    def _record(self, processing_event: ProcessingEvent[uuid.UUID]) -> list[Recording[uuid.UUID]]:
        try:
            return super()._record(processing_event)
        except StaleDataKey as stale:
            # Disposed of by another process since this one cached it: the failed append left
            # nothing behind, so seal again (the mapper runs again) under the owner's new key.
            for name in stale.names:
                self.data_keys.forget(name)
            return super()._record(processing_event)

    def key_history(self) -> list[KeyStatement]:
        with self.db.read() as c:
            c.execute("SELECT statement FROM ledger_keys ORDER BY seq")
            return [parse_statement(bytes(row[0])) for row in c.fetchall()]


class _Collected(ProcessingEvent[uuid.UUID]):
    """ProcessingEvent, but an aggregate is known by its class first: Python 3.11 checks an
    object against eventsourcing's runtime protocols by walking the protocol's members on
    every call, twice per aggregate saved (about a tenth of an append, bench/append.py)."""

    def collect_events(self, *objs: Any, **kwargs: Any) -> None:
        for obj in objs:
            if isinstance(obj, BaseAggregate):
                self.events.extend(obj.collect_events())
                self.aggregates[obj.id] = obj
            elif obj is not None:
                super().collect_events(obj)  # events, and any other kind of aggregate
        self.saved_kwargs.update(kwargs)


def _check_store_kind(config: StoreConfig, practice: dict[str, str]) -> None:
    """Refuse to open (and so create) an empty store of the other kind by mistake."""
    configured = "postgresql" if config.database_url else "sqlite"
    recorded = practice.get("store", "sqlite")
    if configured != recorded and recorded == "postgresql":
        raise StoreMismatch(
            f"the practice at {config.home} keeps its ledger in PostgreSQL: "
            "set CHARTLEDGER_DATABASE_URL"
        )
    if configured != recorded:
        raise StoreMismatch(
            f"the practice at {config.home} keeps its ledger in {config.sqlite_path}: "
            "unset CHARTLEDGER_DATABASE_URL"
        )


def create_practice_files(
    config: StoreConfig, name: str, origin: str | None = None
) -> tuple[dict[str, str], SigningKey]:
    """Create the home, the master key, the first signing key and practice.json (all 0600).

    ``origin`` names the log in its checkpoints and to witnesses: a name the practice controls
    (``records.example-clinic.org/log``), by default ``chartledger.local/<practice id>``."""
    if origin is not None:
        check_name(origin)
    if config.practice_path.exists() or config.master_key_path.exists():
        raise AlreadyInitialised(f"a practice already exists at {config.home}")
    if config.database_url is None and config.sqlite_path.exists():
        raise AlreadyInitialised(
            f"a ledger already exists at {config.sqlite_path} without its practice files: "
            "restore the keys folder and practice.json from backup"
        )
    private_dir(config.home)
    practice_id = str(uuid.uuid4())
    practice = {
        "practice_id": practice_id,
        "name": name,
        "origin": origin or f"chartledger.local/{practice_id}",
        "created": format_timestamp(datetime.now(UTC)),
        "store": "postgresql" if config.database_url else "sqlite",
    }
    write_secret(config.master_key_path, new_master_key())
    signing_key = SigningKey.generate()
    # What `chartledger verify` pins the key history to: kept beside the keys, out of the
    # database, so an attacker holding only the database cannot swap the whole history.
    practice["genesis_key_id"] = signing_key.key_id
    signing_key.save(config.signing_key_path(signing_key.key_id))
    write_secret(config.practice_path, json.dumps(practice, indent=2).encode() + b"\n")
    return practice, signing_key


def record_genesis_key(ledger: Ledger, signing_key: SigningKey) -> KeyStatement:
    """Statement 0 of the key history: the first key, self-signed, in force from size 0."""
    statement = KeyStatement(
        seq=0,
        key_id=signing_key.key_id,
        public_key=signing_key.public_key,
        previous=None,
        from_size=0,
        time=format_timestamp(datetime.now(UTC)),
        origin=ledger.origin,
    )
    data = statement_bytes(statement)
    with ledger.db.write() as c:
        c.execute("SELECT COUNT(*) FROM ledger_keys")
        row = c.fetchone()
        if row is not None and row[0] > 0:
            raise AlreadyInitialised("this database already holds a practice's key history")
        c.execute(
            "INSERT INTO ledger_keys (seq, statement, signature_self, signature_prev) "
            "VALUES (?, ?, ?, NULL)",
            (0, data, signing_key.sign(data)),
        )
    return statement


def remove_practice_files(config: StoreConfig) -> None:
    """Undo ``create_practice_files`` after a failed init (the SQLite file included)."""
    for path in [config.practice_path, config.master_key_path, config.sqlite_path]:
        path.unlink(missing_ok=True)
    for path in config.keys_dir.glob("signing-*.pem"):
        path.unlink()
    for suffix in ("-wal", "-shm"):
        config.sqlite_path.with_name(config.sqlite_path.name + suffix).unlink(missing_ok=True)
