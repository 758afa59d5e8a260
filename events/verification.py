"""``chartledger verify``: the independent store check, then opening every sealed payload.

The structural check is verify/'s, unchanged and keyless. With the practice's keys this also
proves each payload still matches the commitment its header carries, which a database-only
attacker cannot forge without the master key (a forged event at the tip, not yet under any
checkpoint, is caught here), and accounts for every data key (LEDGER_FORMAT.md §4.3): each one
held unwraps bound to its name and owner, and each one gone was destroyed by a disposal the
log records.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import NamedTuple

from events.keys import KeyError_, unwrap_key
from events.ledger import Ledger
from events.sealing import DISPOSED_TYPE, SealError, key_name_minted_here, unseal
from verify.canonical import EncodeError, decode
from verify.errors import HashMismatch, MalformedInput, ProofInvalid, VerificationError
from verify.hashing import commitment
from verify.records import PRACTICE_KEY, key_owner, read_header, split_record
from verify.store import Progress, StoreReport, check_store, open_store
from verify.witness import OutsideCheckpoint

BATCH = 5_000


def store_location(ledger: Ledger) -> str:
    config = ledger.config
    return config.database_url or str(config.sqlite_path)


def verify_configured_store(
    ledger: Ledger,
    trusted_key: str | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    outside: OutsideCheckpoint | None = None,
) -> tuple[StoreReport, int, int]:
    """Return (report, payloads opened, payloads disposed).

    A payload counts as disposed only when its key is gone and a ``Disposed`` event later in
    the log names that key and its patient: a key deleted any other way (by whoever holds the
    database) is a FAIL line naming the key, never "disposed".
    """
    store = open_store(store_location(ledger))
    try:
        report = check_store(
            store, trusted_key, progress, workers=workers or os.cpu_count() or 1, outside=outside
        )
    finally:
        store.close()
    held, keys = _check_data_keys(ledger, report)
    opened = 0
    used: dict[str, list[int]] = {}  # key name -> [payloads sealed under it, last position]
    destroyed: dict[str, _Disposed] = {}  # key name -> the disposal that names it
    for position, state in _stored_records(ledger):
        try:
            header_bytes, sealed = split_record(state)
            header = read_header(header_bytes)
        except VerificationError:
            continue  # the structural check has reported it
        seen = used.setdefault(header.key, [0, position])
        seen[0] += 1
        seen[1] = max(seen[1], position)
        key = keys.get(header.key)
        if key is None:
            if header.key not in held and not key_name_minted_here(ledger.master_key, header.key):
                report.fail(
                    f"position {position}",
                    HashMismatch("sealed under a data key this practice never made"),
                )
            continue  # a held key that failed was reported; a missing one is judged below
        try:
            salt, payload = unseal(key, header.stream, header.version, sealed)
        except SealError as e:
            report.fail(f"position {position}", HashMismatch(str(e)))
            continue
        if commitment(salt, payload) != header.commitment:
            report.fail(
                f"position {position}", HashMismatch("payload does not match its commitment")
            )
            continue
        opened += 1
        if header.type == DISPOSED_TYPE:
            try:
                disposal = _disposed(position, payload)
            except VerificationError as e:
                report.fail(f"position {position}", e)
                continue
            for name in disposal.key_names:
                destroyed.setdefault(name, disposal)
    disposed = _check_missing_keys(ledger, report, held, used, destroyed)
    report.problems.sort(key=lambda p: _order(p.where))
    return report, opened, disposed


class _Disposed(NamedTuple):
    """What a ``Disposed`` event's payload says was destroyed, and where it is in the log."""

    position: int
    owner: str  # patient:<id>
    key_names: tuple[str, ...]


def _disposed(position: int, payload: bytes) -> _Disposed:
    """Read the patient and key names from a ``Disposed`` event's opened payload."""
    try:
        fields = decode(payload)
        patient = fields["patient_id"]
        names = fields["key_names"]
        if isinstance(names, dict):  # a tuple, tagged (LEDGER_FORMAT.md §4.2)
            names = names["_data_"]
        if isinstance(patient, dict):
            patient = patient["_data_"]
        owner = f"patient:{uuid.UUID(patient)}"
    except (VerificationError, KeyError, TypeError, ValueError, AttributeError):
        raise MalformedInput("Disposed event does not name a patient and its keys") from None
    if not isinstance(names, list) or not all(type(n) is str for n in names):
        raise MalformedInput("Disposed event does not name a patient and its keys")
    return _Disposed(position, owner, tuple(names))


def _check_data_keys(ledger: Ledger, report: StoreReport) -> tuple[set[str], dict[str, bytes]]:
    """(every key name the store holds, the sound keys unwrapped by name).

    A key is sound when its name has the form of §4.3 and was minted by this practice, its row
    names the owner its name states, and it unwraps under the master key bound to that name
    and subject. Each unsound key is one FAIL line naming it; its payloads are not opened.
    """
    with ledger.db.read() as c:
        c.execute("SELECT name, subject, wrapped FROM ledger_data_keys")
        rows = c.fetchall()
    held: set[str] = set()
    keys: dict[str, bytes] = {}
    for name, subject, wrapped in rows:
        held.add(name)
        where = f"data key {name}"
        owner = key_owner(name)
        if owner is None:
            report.fail(where, MalformedInput("its name is not <owner>#<32 hex digits>"))
        elif owner != subject:
            report.fail(where, ProofInvalid(f"its subject is {subject}, but its name says {owner}"))
        elif not key_name_minted_here(ledger.master_key, name):
            report.fail(where, ProofInvalid("its name was not minted by this practice"))
        else:
            try:
                keys[name] = unwrap_key(
                    ledger.master_key, bytes(wrapped), name=name, subject=subject
                )
            except (KeyError_, EncodeError) as e:
                report.fail(where, HashMismatch(str(e)))
    return held, keys


def _check_missing_keys(
    ledger: Ledger,
    report: StoreReport,
    held: set[str],
    used: dict[str, list[int]],
    destroyed: dict[str, _Disposed],
) -> int:
    """FAIL every key the log names that is gone without a disposal to account for it, and
    every disposed key the store still holds; return how many payloads were disposed of."""
    disposed = 0
    for name, (count, last) in sorted(used.items()):
        if name in held or not key_name_minted_here(ledger.master_key, name):
            continue  # held: checked already; never minted: failed at each position
        where = f"data key {name}"
        owner = key_owner(name)
        disposal = destroyed.get(name)
        if owner == PRACTICE_KEY:
            report.fail(
                where,
                ProofInvalid(
                    f"missing: the practice's own data key is never disposed of "
                    f"({count} payloads sealed under it)"
                ),
            )
        elif disposal is None:
            report.fail(
                where,
                ProofInvalid(
                    f"missing, and no Disposed event in the log destroyed it "
                    f"({count} payloads sealed under it)"
                ),
            )
        elif disposal.owner != owner:
            report.fail(
                where,
                ProofInvalid(
                    f"missing: the Disposed event at position {disposal.position} "
                    f"that names it disposed of {disposal.owner}"
                ),
            )
        elif last > disposal.position:
            report.fail(
                where,
                ProofInvalid(
                    f"sealed the event at position {last}, after its disposal at position "
                    f"{disposal.position}"
                ),
            )
        else:
            disposed += count
    for name in sorted(held & destroyed.keys()):
        report.fail(
            f"data key {name}",
            ProofInvalid(
                f"disposed of at position {destroyed[name].position}, but the store still holds it"
            ),
        )
    return disposed


def _stored_records(ledger: Ledger) -> Iterator[tuple[int, bytes]]:
    """Every stored record in commit order, in batches (rowid / notification_id order)."""
    order = "rowid" if ledger.db.dialect == "sqlite" else "notification_id"
    last = -1
    while True:
        with ledger.db.read() as c:
            c.execute(
                f"SELECT {order}, position, state FROM stored_events WHERE {order} > ? "
                f"ORDER BY {order} LIMIT {BATCH}",
                (last,),
            )
            rows = c.fetchall()
        if not rows:
            return
        for _, position, state in rows:
            yield position, bytes(state)
        last = rows[-1][0]


def _order(where: str) -> tuple[int, int]:
    parts = where.split()
    if parts[0] == "position" and parts[1].rstrip(":").isdigit():
        return (1, int(parts[1].rstrip(":")))
    return (0, 0)
