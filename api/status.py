"""How the server's background loops are doing: the checkpoint signer, the views' follower and
the hold notices' sender (``api/notice_loop.py``), each late when it has gone longer than its
cadence (and some slack) without a good round.

Read from their heartbeat files in the practice home (``events/background.py``), not from
the ledger, so the answer comes even while the store is locked or away; ``GET /status`` (owners
and auditors), ``/health`` (one word) and ``chartledger status`` all give it. On PostgreSQL,
whose servers may run on several hosts, each loop's row of the shared ``loop_beats`` table is
read too and combined with the file (``events.beats.combine``), so any host answers for
loops another host leads; a database that cannot be read leaves the files to answer. Nothing
here is PHI: times, cadences and exception types.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from events.background import STORE_ERRORS, read_beat
from events.beats import Beat, MalformedBeat, combine

log = logging.getLogger(__name__)
SharedBeats = Callable[[], Mapping[str, Beat]]  # the group's rows (events.loop_beats.read_shared)

SIGNER = "checkpoint-signer"
FOLLOWER = "views-follower"
NOTICES = "hold-notices"
LOOPS = (SIGNER, FOLLOWER, NOTICES)


class LoopStatus(BaseModel):
    name: str = Field(description="checkpoint-signer, views-follower or hold-notices")
    state: Literal["ok", "late", "never-ran", "unreadable"] = Field(
        description="late: no good round (or start) for longer than late_after_seconds; "
        "never-ran: no server process has started it in this practice (on PostgreSQL, on "
        "any host sharing the store; on SQLite, in this home)"
    )
    cadence_seconds: float | None = None
    late_after_seconds: float | None = None
    last_ran: datetime | None = Field(None, description="its last good round")
    started: datetime | None = Field(None, description="a server process last started it")
    last_failure: datetime | None = None
    failure: str | None = Field(None, description="the last failure's exception type")


class BackgroundStatus(BaseModel):
    healthy: bool = Field(description="every loop ok")
    at: datetime
    loops: list[LoopStatus]


def loop_status(name: str, beat: Beat | None, now: datetime) -> LoopStatus:
    if beat is None:
        return LoopStatus(name=name, state="never-ran")
    return LoopStatus(
        name=name,
        state="late" if beat.late(now) else "ok",
        cadence_seconds=beat.cadence,
        late_after_seconds=beat.late_after,
        last_ran=beat.last_ok,
        started=beat.started,
        last_failure=beat.last_failure,
        failure=beat.failure,
    )


def background_status(
    home: Path, now: datetime | None = None, *, shared: SharedBeats | None = None
) -> BackgroundStatus:
    """Each loop as this home's file and, given ``shared``, the group's row say together; a
    file that cannot be read counts only when there is no row either."""
    now = now or datetime.now(UTC)
    group: Mapping[str, Beat] = {}
    if shared is not None:
        try:
            group = shared()
        except STORE_ERRORS as e:  # the database away: this host's files answer alone
            log.info("loops' shared heartbeats not read (%s): the files answer", type(e).__name__)
    loops = []
    for name in LOOPS:
        try:
            local = read_beat(home, name)
        except (MalformedBeat, OSError):
            if name not in group:
                loops.append(LoopStatus(name=name, state="unreadable"))
                continue
            local = None
        loops.append(loop_status(name, combine(local, group.get(name)), now))
    return BackgroundStatus(healthy=all(s.state == "ok" for s in loops), at=now, loops=loops)


def health_word(home: Path, shared: SharedBeats | None = None) -> str:
    """``/health``'s one word on the loops, for a monitor without credentials: ok or late."""
    return "ok" if background_status(home, shared=shared).healthy else "late"
