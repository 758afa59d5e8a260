"""Deliveries that are failing, and each custodian's delivery state on the hold report.

The ledger records a notice when it went (``Hold.NoticeSent``), never an attempt that failed:
the server tries again every round, and a hold event per failed try would fill the log (and
change the hold streams a production's verifier replays, docs/BUNDLE_FORMAT.md §2.3). So the
server's sending rounds keep the deliveries failing now (ids, kinds, times, tries and an
exception type: no PHI), rewritten whole after each round of the schedule with that round's
failures, each keeping when it first failed: on SQLite (one host) in
``$CHARTLEDGER_HOME/status/hold-notice-failures.json`` (0600 in a 0700 folder); on PostgreSQL,
whose servers may run on several hosts, in the ``hold_notice_failures`` table
(``events/notice_failure_rows.py``), so the hold report on any host shows the group's last
round. The hold report reads it and gives each custodian of the current notice one state:

- ``acknowledged``: they acknowledged the current version;
- ``failing``: something due for them (notice, reminder or escalation) is failing to go out;
- ``sent``: the current version went to them (and nothing due for them is failing);
- ``due``: the current version has not gone to them yet (the next round sends it);
- ``none``: nothing is sent on this hold (silent, released, or no notice issued).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

from events import notice_failure_rows as rows
from events.db import Cursor
from events.ledger import Ledger
from events.private_files import private_dir, write_private
from legal_hold.custodians import CustodianStatus, Due

FILE = "hold-notice-failures.json"


@dataclass(frozen=True)
class Failing:
    """A delivery the last round of the schedule could not make."""

    hold_id: UUID
    custodian_id: UUID
    version: int
    kind: str
    first_failed: datetime
    last_failed: datetime
    tries: int
    failure: str  # the exception's type, never its message

    def key(self) -> tuple[UUID, UUID, int, str]:
        return (self.hold_id, self.custodian_id, self.version, self.kind)


@dataclass(frozen=True)
class DeliveryState:
    custodian_id: UUID
    state: str  # acknowledged, failing, sent, due, none
    failing_since: datetime | None = None
    tries: int = 0
    failure: str | None = None


def path(home: Path) -> Path:
    return home / "status" / FILE


def failing(ledger: Ledger) -> list[Failing]:
    """The deliveries failing as of the last round (none if no round failed, or none yet)."""
    if ledger.db.dialect == "postgres":
        with ledger.db.read() as c:
            return _read_rows(c)
    return _read_file(ledger.config.home)


def record_round(ledger: Ledger, failed: list[tuple[Due, str]], *, at: datetime) -> None:
    """After a round: what failed in it, each counting its tries since it first failed; what
    is not among them went out (or is no longer due) and is dropped."""
    if ledger.db.dialect == "postgres":
        with ledger.db.write(lock=False) as c:
            c.execute(rows.LOCK)
            before = _read_rows(c)
            now = _after_round(before, failed, at)
            if now or before:  # nothing failing, nothing to clear: no write every round
                c.execute(rows.CLEAR)
                c.executemany(rows.INSERT, [_row(f) for f in now])
        return
    home = ledger.config.home
    before = _read_file(home)
    now = _after_round(before, failed, at)
    if not now and not before:
        return  # nothing failing, nothing to clear: no write every round
    entries = [
        {
            "hold_id": str(f.hold_id),
            "custodian_id": str(f.custodian_id),
            "version": f.version,
            "kind": f.kind,
            "first_failed": f.first_failed.isoformat(),
            "last_failed": f.last_failed.isoformat(),
            "tries": f.tries,
            "failure": f.failure,
        }
        for f in now
    ]
    target = path(home)
    private_dir(target.parent)
    part = target.with_name(f".{FILE}.{os.getpid()}.part")
    write_private(part, json.dumps({"version": 1, "failing": entries}).encode() + b"\n")
    os.replace(part, target)  # whole or not at all


def _after_round(
    before: list[Failing], failed: list[tuple[Due, str]], at: datetime
) -> list[Failing]:
    earlier_of = {f.key(): f for f in before}
    now = []
    for item, failure in failed:
        key = (item.hold_id, item.custodian_id, item.version, item.kind)
        earlier = earlier_of.get(key)
        now.append(
            Failing(
                *key,
                first_failed=earlier.first_failed if earlier else at,
                last_failed=at,
                tries=(earlier.tries if earlier else 0) + 1,
                failure=failure,
            )
        )
    return now


def _read_file(home: Path) -> list[Failing]:
    try:
        raw = json.loads(path(home).read_text())
    except FileNotFoundError:
        return []
    return [
        Failing(
            hold_id=UUID(e["hold_id"]),
            custodian_id=UUID(e["custodian_id"]),
            version=int(e["version"]),
            kind=str(e["kind"]),
            first_failed=datetime.fromisoformat(e["first_failed"]),
            last_failed=datetime.fromisoformat(e["last_failed"]),
            tries=int(e["tries"]),
            failure=str(e["failure"]),
        )
        for e in raw["failing"]
    ]


def _read_rows(cursor: Cursor) -> list[Failing]:
    cursor.execute(rows.SELECT)
    return [
        Failing(
            hold_id=UUID(str(hold)),
            custodian_id=UUID(str(custodian)),
            version=int(version),
            kind=str(kind),
            first_failed=first.astimezone(UTC),
            last_failed=last.astimezone(UTC),
            tries=int(tries),
            failure=str(failure),
        )
        for hold, custodian, version, kind, first, last, tries, failure in cursor.fetchall()
    ]


def _row(f: Failing) -> tuple[object, ...]:
    return (
        f.hold_id,
        f.custodian_id,
        f.version,
        f.kind,
        f.first_failed,
        f.last_failed,
        f.tries,
        f.failure,
    )


def delivery_states(
    hold_id: UUID,
    custodians: list[CustodianStatus],
    due: list[Due],
    failures: list[Failing],
    *,
    sends: bool,
) -> list[DeliveryState]:
    """Each custodian's state (see the module's docstring). Only failures of items still due
    count: one that went out since (by ``holds remind``, say) is not failing any more."""
    still_due = {(d.hold_id, d.custodian_id, d.version, d.kind) for d in due}
    found = []
    for c in custodians:
        mine = [
            f
            for f in failures
            if f.hold_id == hold_id and f.custodian_id == c.custodian_id and f.key() in still_due
        ]
        if not sends or c.version is None:
            found.append(DeliveryState(c.custodian_id, "none"))
        elif c.acknowledged_at is not None:
            found.append(DeliveryState(c.custodian_id, "acknowledged"))
        elif mine:
            first = min(mine, key=lambda f: f.first_failed)
            latest = max(mine, key=lambda f: f.last_failed)
            tries = max(f.tries for f in mine)
            found.append(
                DeliveryState(c.custodian_id, "failing", first.first_failed, tries, latest.failure)
            )
        elif c.notified_at is not None:
            found.append(DeliveryState(c.custodian_id, "sent"))
        else:
            found.append(DeliveryState(c.custodian_id, "due"))
    return found
