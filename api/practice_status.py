"""The practice at a glance, for the console's status page: the log's size, the newest signed
checkpoint, each configured witness's newest cosigned size, the newest RFC 3161 timestamp, the
last backup, and the background loops (``api/status.py``). Nothing here is PHI: sizes, times,
key ids, witness names and exception types."""

from __future__ import annotations

from dataclasses import dataclass

from api.status import BackgroundStatus, background_status
from events.checkpoints import latest_checkpoint
from events.ledger import Ledger
from events.log import tree_size
from events.loop_beats import read_shared
from events.witnessing import Outward, WitnessingError, cosigned_size
from projections.runner import read_entries

BACKUP_TAKEN = "events.backup_record:Backups.Taken"


@dataclass(frozen=True)
class WitnessState:
    name: str  # the witness's key name, as its vkey gives it
    url: str
    cosigned_size: int  # 0: nothing cosigned yet


@dataclass(frozen=True)
class PracticeStatus:
    log_size: int
    checkpoint_size: int | None
    checkpoint_time: str | None
    checkpoint_key: str | None
    witnesses: list[WitnessState]
    witness_problem: str | None  # witnesses.json that cannot be read, in words
    tsa_url: str | None
    timestamped_size: int | None
    last_backup_position: int | None
    last_backup_time: str | None
    background: BackgroundStatus


def practice_status(ledger: Ledger) -> PracticeStatus:
    home = ledger.config.home
    with ledger.db.read() as c:
        size = tree_size(c)
        checkpoint = latest_checkpoint(c)
        c.execute("SELECT MAX(size) FROM ledger_timestamps")
        row = c.fetchone()
    stamped = None if row is None or row[0] is None else int(row[0])
    problem, witnesses, tsa_url = None, [], None
    try:
        outward = Outward.load(home)
        witnesses = [
            WitnessState(w.vkey.name, w.url, cosigned_size(ledger.db, w.vkey.name))
            for w in outward.witnesses
        ]
        tsa_url = None if outward.tsa is None else outward.tsa.url
    except WitnessingError:
        problem = "witnesses.json in the practice home cannot be read"
    backup_at, backup_time = _last_backup(ledger)
    return PracticeStatus(
        log_size=size,
        checkpoint_size=None if checkpoint is None else checkpoint.size,
        checkpoint_time=None if checkpoint is None else checkpoint.time,
        checkpoint_key=None if checkpoint is None else checkpoint.key_id,
        witnesses=witnesses,
        witness_problem=problem,
        tsa_url=tsa_url,
        timestamped_size=stamped,
        last_backup_position=backup_at,
        last_backup_time=backup_time,
        background=background_status(home, shared=lambda: read_shared(ledger.db)),
    )


def _last_backup(ledger: Ledger) -> tuple[int | None, str | None]:
    """The position and recorded time of the newest ``Backups.Taken`` (docs/BACKUP_FORMAT.md)."""
    with ledger.db.read() as c:
        c.execute(
            "SELECT MAX(l.position) FROM ledger_leaves l JOIN stored_events e "
            "ON e.originator_id = l.stream AND e.originator_version = l.version "
            "WHERE e.topic = ?",
            (BACKUP_TAKEN,),
        )
        row = c.fetchone()
    if row is None or row[0] is None:
        return None, None
    position = int(row[0])
    entry = next(read_entries(ledger, position, limit=1, modules=frozenset()))
    return position, entry.header.recorded
