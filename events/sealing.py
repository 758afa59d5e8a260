"""Per-subject data keys, wrapped by the practice master key, and AES-GCM sealing (§4.3).

A subject's payloads can be made unreadable for good by destroying its one wrapped data key
(crypto-shredding) while every hash over them stays as it was.
"""

from __future__ import annotations

import hmac
import os
import threading
from uuid import UUID

import msgpack

from events.db import Cursor, Database
from events.keys import KEY_SIZE, KeyError_, aead_open, aead_seal, unwrap_key, wrap_key
from verify.canonical import pack_ordered
from verify.hashing import commitment

NONCE_SIZE = 12
SALT_SIZE = 32
# The event that destroys data keys (legal_hold.retention.Disposal): its payload names the
# patient and the keys. `chartledger verify` lets a key be missing only when one of these names
# it, and PostgreSQL's DESTROY_FUNCTION deletes a key only beside one appended in the same
# transaction. events/ cannot import legal_hold/, so the topic is spelt here.
DISPOSED_TYPE = "legal_hold.retention:Disposal.Disposed"
DESTROY_FUNCTION = "chartledger_destroy_data_key"


class DataKeyDestroyed(LookupError):
    """The subject's data key was destroyed (disposal): its payloads cannot be opened."""


class SealError(ValueError):
    """A sealed payload did not open, or opened to something its header does not commit to."""


def aad(stream: str, version: int) -> bytes:
    return pack_ordered({"stream": stream, "version": version})  # canonical key order


class DataKeys:
    """Each subject's data key, found or created by name; unwrapped keys are cached in memory.

    A key is named ``<owner>#<32 hex digits>`` (§4.3): disposal deletes the named row, and a
    later event about the same owner is sealed under a new key with a new name, so the events
    sealed before stay disposed and the ones after stay readable.

    The cache cannot see a deletion made by another process, so reads re-check that the row
    still exists, and ``EventStore`` checks every key an append used inside its transaction,
    under the writer lock that disposal also takes (``missing``).
    """

    def __init__(self, db: Database, master_key: bytes) -> None:
        self._db = db
        self._master_key = master_key
        self._by_name: dict[str, bytes] = {}
        self._current: dict[str, tuple[str, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes:
        """The named key; DataKeyDestroyed when it is gone (never silently re-created)."""
        rows = self._db.query("SELECT wrapped FROM ledger_data_keys WHERE name = ?", (name,))
        row = rows[0] if rows else None
        if row is None:
            self.forget(name)
            raise DataKeyDestroyed(f"no data key for {name.partition('#')[0]}")
        key = self._by_name.get(name)
        if key is None:
            key = self._by_name[name] = self._unwrap(name, bytes(row[0]))
        return key

    def all_keys(self) -> dict[str, bytes]:
        """Every key the store holds now, unwrapped: one query, for whole-log passes."""
        with self._db.read() as c:
            c.execute("SELECT name, wrapped FROM ledger_data_keys")
            rows = c.fetchall()
        keys = {}
        for name, wrapped in rows:
            key = self._by_name.get(name)
            if key is None:
                key = self._by_name[name] = self._unwrap(name, bytes(wrapped))
            keys[name] = key
        return keys

    def current(self, owner: str) -> tuple[str, bytes]:
        """(name, key) to seal ``owner``'s next event under, creating the key if it has none."""
        found = self._current.get(owner)
        if found is not None:
            return found
        with self._lock:
            found = self._load_current(owner)
            if found is None:
                name = mint_key_name(self._master_key, owner)
                wrapped = wrap_key(self._master_key, os.urandom(KEY_SIZE), name=name, subject=owner)
                with self._db.write(lock=False) as c:
                    c.execute(
                        "INSERT INTO ledger_data_keys (name, subject, wrapped) VALUES (?, ?, ?) "
                        "ON CONFLICT (subject) DO NOTHING",
                        (name, owner, wrapped),
                    )
                found = self._load_current(owner)
                assert found is not None
            return found

    def forget(self, name: str) -> None:
        self._by_name.pop(name, None)
        owner = name.partition("#")[0]
        if self._current.get(owner, ("",))[0] == name:
            self._current.pop(owner, None)

    def _load_current(self, owner: str) -> tuple[str, bytes] | None:
        with self._db.read() as c:
            c.execute("SELECT name, wrapped FROM ledger_data_keys WHERE subject = ?", (owner,))
            row = c.fetchone()
        if row is None:
            return None
        name = row[0]
        if name.rpartition("#")[0] != owner:
            # A row moved to another owner by whoever holds the database: sealing this owner's
            # events under it would let them outlive this owner's disposal.
            raise SealError(f"the data key in {owner}'s row is another owner's: refused")
        key = self._unwrap(name, bytes(row[1]))
        self._by_name[name] = key
        self._current[owner] = (name, key)
        return name, key

    def _unwrap(self, name: str, wrapped: bytes) -> bytes:
        # Unwrapped as bound to its name and the owner the name states, whatever the row's
        # subject column says: reads find keys by name, and `chartledger verify` reports a row
        # whose subject disagrees. Bytes from another row or a renamed row do not unwrap.
        try:
            return unwrap_key(self._master_key, wrapped, name=name, subject=name.rpartition("#")[0])
        except KeyError_:
            raise SealError(
                f"data key {name.partition('#')[0]} does not unwrap under this master key"
            ) from None


def mint_key_name(master_key: bytes, owner: str) -> str:
    """``<owner>#<16 hex random><16 hex tag>``: the tag, an HMAC under the master key, lets
    ``chartledger verify`` tell a key this practice made (and may since have disposed of) from
    one a forger names to pass a forged event off as disposed (§4.3)."""
    return key_name(master_key, owner, os.urandom(8).hex())


def key_name(master_key: bytes, owner: str, nonce: str) -> str:
    """The name ``mint_key_name`` gives for this nonce (16 hex digits)."""
    return f"{owner}#{nonce}{key_name_tag(master_key, owner, nonce)}"


def key_name_minted_here(master_key: bytes, name: str) -> bool:
    owner, _, rest = name.rpartition("#")
    nonce, tag = rest[:16], rest[16:]
    return hmac.compare_digest(tag, key_name_tag(master_key, owner, nonce))


def key_name_tag(master_key: bytes, owner: str, nonce: str) -> str:
    message = f"chartledger data key name\0{owner}#{nonce}".encode()
    return hmac.new(master_key, message, "sha256").hexdigest()[:16]


def owned_key_names(cursor: Cursor, owner: str) -> list[str]:
    """The names of the keys the store holds for ``owner``, found by name: the name is what
    the headers cite, and the subject column (which says only which key seals next) may have
    been changed by someone holding the database."""
    prefix = f"{owner}#"
    cursor.execute(
        "SELECT name FROM ledger_data_keys WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
    )
    return sorted(row[0] for row in cursor.fetchall())


def destroy_data_keys(cursor: Cursor, dialect: str, names: list[str], disposal: UUID) -> None:
    """Delete the named keys for the disposal whose ``Disposed`` event (stream ``disposal``)
    this same transaction appended. On PostgreSQL the writer role may not DELETE them itself:
    DESTROY_FUNCTION does, and refuses unless that event is there (events/guards.py)."""
    if dialect == "postgres":
        for name in names:
            cursor.execute(f"SELECT {DESTROY_FUNCTION}(?, ?)", (name, disposal))
    else:
        cursor.executemany("DELETE FROM ledger_data_keys WHERE name = ?", [(n,) for n in names])


def missing_keys(cursor: Cursor, names: set[str]) -> set[str]:
    """Which of ``names`` the store no longer holds (disposed since they were cached)."""
    marks = ", ".join("?" * len(names))
    cursor.execute(f"SELECT name FROM ledger_data_keys WHERE name IN ({marks})", sorted(names))
    return names - {row[0] for row in cursor.fetchall()}


def seal(data_key: bytes, stream: str, version: int, payload: bytes) -> tuple[bytes, bytes]:
    """Return (commitment, sealed bytes) for canonical payload bytes."""
    fresh = os.urandom(SALT_SIZE + NONCE_SIZE)
    salt, nonce = fresh[:SALT_SIZE], fresh[SALT_SIZE:]
    plaintext = pack_ordered({"salt": salt, "payload": payload})  # canonical key order
    sealed = nonce + aead_seal(data_key, nonce, plaintext, aad(stream, version))
    return commitment(salt, payload), sealed


def unseal(data_key: bytes, stream: str, version: int, sealed: bytes) -> tuple[bytes, bytes]:
    """Return (salt, payload bytes); SealError if the ciphertext or its binding was altered."""
    plaintext = aead_open(data_key, sealed[:NONCE_SIZE], sealed[NONCE_SIZE:], aad(stream, version))
    if plaintext is None:
        raise SealError(f"sealed payload of {stream} v{version} does not open")
    # No canonical re-encoding check: AES-GCM vouches that these are the bytes seal() wrote.
    try:
        opened = msgpack.unpackb(plaintext)
        salt, payload = opened["salt"], opened["payload"]
    except Exception:
        salt = payload = None
    if type(salt) is not bytes or type(payload) is not bytes or len(opened) != 2:
        raise SealError(f"sealed payload of {stream} v{version} does not hold salt and payload")
    return salt, payload
