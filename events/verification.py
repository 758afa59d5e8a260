"""``chartledger verify``: the independent store check, then opening every sealed payload.

The structural check is verify/'s, unchanged and keyless. With the practice's keys this also
proves each payload still matches the commitment its header carries, which a database-only
attacker cannot forge without the master key (a forged event at the tip, not yet under any
checkpoint, is caught here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from events.ledger import Ledger
from events.sealing import SealError, key_name_minted_here, unseal
from verify.errors import HashMismatch, VerificationError
from verify.hashing import commitment
from verify.records import parse_header, split_record
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
    """Return (report, payloads opened, payloads disposed)."""
    store = open_store(store_location(ledger))
    try:
        report = check_store(
            store, trusted_key, progress, workers=workers or os.cpu_count() or 1, outside=outside
        )
    finally:
        store.close()
    opened = disposed = 0
    keys = ledger.data_keys.all_keys()
    for position, state in _stored_records(ledger):
        try:
            header_bytes, sealed = split_record(state)
            header = parse_header(header_bytes)
        except VerificationError:
            continue  # the structural check has reported it
        key = keys.get(header.key)
        if key is None and key_name_minted_here(ledger.master_key, header.key):
            disposed += 1
            continue
        if key is None:
            report.fail(
                f"position {position}",
                HashMismatch("sealed under a data key this practice never made"),
            )
            continue
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
    report.problems.sort(key=lambda p: _order(p.where))
    return report, opened, disposed


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
