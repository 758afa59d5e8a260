"""A lock one holder at a time takes across every process of a practice: an ``flock`` on a file
in the practice home (the processes of one machine) and, on PostgreSQL, a session advisory lock
in the store's schema too (processes on other machines sharing the database, each with a copy
of the home). Held for a block; a holder that dies releases both (the kernel closes its file,
the database ends its session).

Used where doing a thing twice is worse than waiting: sending hold notices
(``legal_hold/notice_schedule.py``), whose every round reads what was sent under the lock.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from events.db import Database
from events.private_files import private_dir

# The advisory-lock space ("CHLN") of these locks; the key within it is the schema and name.
NAMED_LOCK_SPACE = 0x43484C4E


@contextmanager
def held(db: Database, home: Path, name: str, *, wait: bool) -> Iterator[bool]:
    """Hold the lock ``name`` for the block and yield True; without ``wait``, yield False at
    once (holding nothing) when another holder has it."""
    private_dir(home)
    fd = os.open(home / f"{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if db.dialect == "sqlite":
            yield True  # one machine: the file is the whole lock
            return
        with db.datastore.get_connection() as conn:  # type: ignore[union-attr]
            key = (NAMED_LOCK_SPACE, f"{db.schema}/{name}")
            if wait:
                conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
            else:
                sql = "SELECT pg_try_advisory_lock(%s, hashtext(%s)) AS got"
                row = conn.execute(sql, key).fetchone()
                if not (row["got"] if isinstance(row, dict) else row and row[0]):
                    yield False
                    return
            try:
                yield True
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
    finally:
        os.close(fd)  # and with it the file lock
