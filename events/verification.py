"""``chartledger verify``: the independent store check, plus opening every sealed payload.

The structural check is verify/'s, unchanged; with the practice's keys this also proves each
payload still matches the commitment its header carries, which a database-only attacker cannot
forge without the master key.
"""

from __future__ import annotations

from events.ledger import Ledger
from events.sealing import DataKeyDestroyed, SealError, unseal
from verify.errors import HashMismatch
from verify.hashing import commitment
from verify.records import Header
from verify.store import Progress, StoreReport, check_store, open_store


def store_location(ledger: Ledger) -> str:
    config = ledger.config
    return config.database_url or str(config.sqlite_path)


def verify_configured_store(
    ledger: Ledger, trusted_key: str | None = None, progress: Progress | None = None
) -> tuple[StoreReport, int, int]:
    """Return (report, payloads opened, payloads disposed)."""
    counts = {"opened": 0, "disposed": 0}
    failures: list[tuple[str, Exception]] = []

    def open_payload(position: int, header: Header, sealed: bytes) -> None:
        try:
            key = ledger.data_keys.get(header.key)
        except DataKeyDestroyed:
            counts["disposed"] += 1
            return
        try:
            salt, payload = unseal(key, header.stream, header.version, sealed)
        except SealError as e:
            failures.append((f"position {position}", HashMismatch(str(e))))
            return
        if commitment(salt, payload) != header.commitment:
            failures.append(
                (f"position {position}", HashMismatch("payload does not match its commitment"))
            )
            return
        counts["opened"] += 1

    store = open_store(store_location(ledger))
    try:
        report = check_store(store, trusted_key, progress, on_event=open_payload)
    finally:
        store.close()
    for where, error in failures:
        report.fail(where, error)  # type: ignore[arg-type]
    report.problems.sort(key=lambda p: _order(p.where))
    return report, counts["opened"], counts["disposed"]


def _order(where: str) -> tuple[int, int]:
    parts = where.split()
    if parts[0] == "position" and parts[1].rstrip(":").isdigit():
        return (1, int(parts[1].rstrip(":")))
    return (0, 0)
