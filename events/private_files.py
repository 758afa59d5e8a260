"""Files and folders only their owner can read: files 0600, folders 0700, whatever the umask.

The SQLite store's views hold PHI in clear, exports and productions are PHI, and key files are
secrets, so everything Chartledger writes under its home or into an output path the user names
is made through here. A mode passed to ``open`` or ``mkdir`` is masked by the process's umask
(under the common 0o022, ``mkdir`` makes 0755 folders and libraries make 0644 files; under
0o277 even ``os.open(..., 0o600)`` would make a key file its owner cannot write), so each file
and folder we create is set to its exact mode with ``fchmod``/``chmod`` right after creation,
before anything is written into it. A folder that already existed is the user's or an earlier
run's and is left as it is.

The umask itself is never changed: it is process-wide and the server writes from several
threads at once.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, TextIO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path, *, exist_ok: bool = True) -> Path:
    """Make ``path`` and any missing parents, each new one 0700; existing ones are untouched
    (without ``exist_ok``, an existing ``path`` is refused with FileExistsError)."""
    parent = path.parent
    if parent != path and not parent.is_dir():
        private_dir(parent)
    try:
        path.mkdir(mode=DIR_MODE)
    except FileExistsError:
        if exist_ok and path.is_dir():
            return path  # the user's, an earlier run's, or another of our processes' (0700)
        raise
    os.chmod(path, DIR_MODE)
    return path


def _create(path: Path, exclusive: bool) -> int:
    private_dir(path.parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # exactly 0600, before a byte is written
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_binary(path: Path, *, exclusive: bool = True, buffering: int = -1) -> BinaryIO:
    """``path`` open for writing bytes, created 0600 in folders made 0700. ``exclusive``: it
    must not exist yet; otherwise an existing file is emptied and set to 0600."""
    return os.fdopen(_create(path, exclusive), "wb", buffering=buffering)


def private_text(
    path: Path, *, exclusive: bool = True, encoding: str = "utf-8", newline: str | None = None
) -> TextIO:
    """As ``private_binary``, for text."""
    return os.fdopen(_create(path, exclusive), "w", encoding=encoding, newline=newline)


def write_private(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` as a 0600 file (refusing an existing one when ``exclusive``)."""
    with private_binary(path, exclusive=exclusive) as f:
        f.write(data)


def touch_private(path: Path) -> Path:
    """Make sure ``path`` exists as a 0600 file before a library (sqlite3, zipfile, shutil) opens
    it by name: libraries create files 0666 less the umask. An existing file keeps its content
    and its mode. SQLite gives its -wal and -shm files the mode of the database file."""
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return path
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)
    return path


def tighten(path: Path) -> None:
    """Take group and other bits off a file of ours made before files were created 0600 (a
    store from an older version, under umask 022). Missing, or not ours to change (another
    user's, read-only media): left as it is."""
    try:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, FILE_MODE)
    except OSError:
        pass


def open_private_fd(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT, 0600)`` for lock and shared-memory files; one this call
    created is set to exactly 0600."""
    private_dir(path.parent)
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags & ~os.O_EXCL)
    try:
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd
