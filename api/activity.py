"""When each session was last used, shared by every server process of one practice on SQLite
(one host; on PostgreSQL, servers on several hosts share ``api/session_clocks.py`` instead).

The idle timeout needs the last request of a session, whichever process served it; writing it
to the ledger on every request would cost an append each. It lives instead in a small file
under ``CHARTLEDGER_HOME`` that every server process maps into memory (``session-activity``,
mode 0600): a table of slots, each a session id (16 bytes) and the last time it was seen (whole
milliseconds since the epoch, 8 bytes), found by the id's hash and linear probing.

A slot is claimed under an ``flock`` on the file (once per session); after that a process only
writes its 8-byte time, an aligned store the others read whole. Two processes seeing one session
at once may leave the earlier of their two times, some milliseconds older: the timeout is
minutes. The file holds no PHI: session ids and times, which the ledger holds too. A session
that finds no slot in reach (a full table) is kept in this process's memory, as every session
was when the server had one process.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol
from uuid import UUID

from events.private_files import open_private_fd

MAGIC = b"CLACT1\0\0"
SLOTS = 1 << 14  # sessions within reach at once; 384 KiB
SLOT = 24  # id (16 bytes) and time (8)
HEADER = len(MAGIC)
REACH = 64  # slots probed from a session's own
EMPTY, GONE = bytes(16), b"\xff" * 16
_TIME = struct.Struct("<Q")


class LastSeen(Protocol):
    """What the idle timeout reads and writes: a dict, or the shared table below."""

    def get(self, session: str, default: float) -> float: ...
    def __setitem__(self, session: str, seen: float) -> None: ...
    def pop(self, session: str, default: float | None = None) -> float | None: ...
    def close(self) -> None: ...


class SessionActivity:
    """``get``, set and ``pop`` by session id (text), as the dict it replaces."""

    def __init__(self, path: Path) -> None:
        self._local: dict[str, float] = {}
        self._threads = threading.Lock()  # flock does not tell this process's threads apart
        self._fd = open_private_fd(path, os.O_RDWR | os.O_CLOEXEC)
        size = HEADER + SLOTS * SLOT
        with self._claiming():
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)
                os.pwrite(self._fd, MAGIC, 0)
        self._map = mmap.mmap(self._fd, size)
        if self._map[:HEADER] != MAGIC:
            raise ValueError(f"{path} is not a session activity file")

    def get(self, session: str, default: float) -> float:
        if session in self._local:
            return self._local[session]
        slot = self._find(UUID(session).bytes)
        if slot is None:
            return default
        millis = _TIME.unpack_from(self._map, slot + 16)[0]
        return millis / 1000 if millis else default

    def __setitem__(self, session: str, seen: float) -> None:
        key = UUID(session).bytes
        slot = self._find(key)
        if slot is None:
            slot = self._claim(key)
        if slot is None:
            self._local[session] = seen
            return
        _TIME.pack_into(self._map, slot + 16, round(seen * 1000))

    def pop(self, session: str, default: float | None = None) -> float | None:
        self._local.pop(session, None)
        key = UUID(session).bytes
        with self._claiming():
            slot = self._find(key)
            if slot is None:
                return default
            millis = _TIME.unpack_from(self._map, slot + 16)[0]
            self._map[slot : slot + 16] = GONE
        return millis / 1000 if millis else default

    def close(self) -> None:
        """Unmap and close the file; again does nothing (an app's lifespan may run twice)."""
        if self._fd < 0:
            return
        self._map.close()
        os.close(self._fd)
        self._fd = -1

    def _slots(self, key: bytes) -> Iterator[int]:
        first = int.from_bytes(key[:8], "little") % SLOTS
        for step in range(REACH):
            yield HEADER + ((first + step) % SLOTS) * SLOT

    def _find(self, key: bytes) -> int | None:
        for slot in self._slots(key):
            found = self._map[slot : slot + 16]
            if found == key:
                return slot
            if found == EMPTY:
                return None
        return None

    def _claim(self, key: bytes) -> int | None:
        with self._claiming():
            free = None
            for slot in self._slots(key):
                found = self._map[slot : slot + 16]
                if found == key:
                    return slot  # another process claimed it meanwhile
                if free is None and found in (EMPTY, GONE):
                    free = slot
                if found == EMPTY:
                    break
            if free is not None:
                _TIME.pack_into(self._map, free + 16, 0)  # the time first: no id with an old one
                self._map[free : free + 16] = key
            return free

    @contextmanager
    def _claiming(self) -> Iterator[None]:
        with self._threads:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
