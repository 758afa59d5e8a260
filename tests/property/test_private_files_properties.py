"""events/private_files.py under any umask: every folder it makes is 0700, every file 0600, and
a folder or file that was there before keeps its mode (and a file its content)."""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.private_files import (
    open_private_fd,
    private_binary,
    private_dir,
    private_text,
    tighten,
    touch_private,
    write_private,
)

umasks = st.integers(min_value=0, max_value=0o777)
names = st.text(alphabet="abcdefgh", min_size=1, max_size=6)
depths = st.lists(names, min_size=1, max_size=4)
modes = st.sampled_from([0o700, 0o750, 0o755, 0o775])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@contextmanager
def under(umask: int) -> Iterator[Path]:
    """A fresh folder (the test's, 0755) and the process umask set, both undone after."""
    with tempfile.TemporaryDirectory() as folder:
        base = Path(folder) / "base"
        base.mkdir()
        os.chmod(base, 0o755)
        old = os.umask(umask)
        try:
            yield base
        finally:
            os.umask(old)


@settings(max_examples=40, deadline=None)
@given(umask=umasks, parts=depths, existing=modes)
def test_new_folders_are_0700_and_existing_ones_keep_their_mode(
    umask: int, parts: list[str], existing: int
) -> None:
    with under(umask) as base:
        os.chmod(base, existing)
        target = base.joinpath(*parts)
        assert private_dir(target) == target
        made = [base.joinpath(*parts[: n + 1]) for n in range(len(parts))]
        assert [mode(p) for p in made] == [0o700] * len(made)
        assert mode(base) == existing
        assert private_dir(target) == target  # again: there already, nothing changes
        with pytest.raises(FileExistsError):
            private_dir(target, exist_ok=False)


@settings(max_examples=40, deadline=None)
@given(umask=umasks, parts=depths, data=st.binary(max_size=64), text=st.text(max_size=32))
def test_files_are_0600_from_creation_whatever_the_umask(
    umask: int, parts: list[str], data: bytes, text: str
) -> None:
    with under(umask) as base:
        folder = base.joinpath(*parts)
        write_private(folder / "bytes", data, exclusive=True)
        assert (folder / "bytes").read_bytes() == data
        with private_text(folder / "text") as f:
            f.write(text)
        assert (folder / "text").read_bytes() == text.encode("utf-8")
        with private_binary(folder / "stream", buffering=0) as f:
            f.write(data)
        touch_private(folder / "for-a-library")
        os.close(open_private_fd(folder / "lock", os.O_RDWR))
        files = ["bytes", "text", "stream", "for-a-library", "lock"]
        assert [mode(folder / n) for n in files] == [0o600] * len(files)
        assert mode(folder) == 0o700
        with pytest.raises(FileExistsError):
            write_private(folder / "bytes", b"other", exclusive=True)
        assert (folder / "bytes").read_bytes() == data


@settings(max_examples=25, deadline=None)
@given(umask=umasks, data=st.binary(min_size=1, max_size=64), before=modes)
def test_a_file_that_was_there_keeps_content_and_mode_when_touched_and_is_0600_when_rewritten(
    umask: int, data: bytes, before: int
) -> None:
    with under(umask) as base:
        theirs = base / "theirs"
        theirs.write_bytes(data)
        os.chmod(theirs, before & 0o666)
        touch_private(theirs)
        assert theirs.read_bytes() == data and mode(theirs) == before & 0o666
        os.close(open_private_fd(theirs, os.O_RDWR))
        assert mode(theirs) == before & 0o666
        write_private(theirs, b"new")  # a file we write over (a token file) is ours: 0600
        assert theirs.read_bytes() == b"new" and mode(theirs) == 0o600


@settings(max_examples=25, deadline=None)
@given(before=st.integers(min_value=0, max_value=0o077).map(lambda rest: 0o600 | rest))
def test_tighten_takes_off_group_and_other_bits_and_leaves_a_private_file_alone(
    before: int,
) -> None:
    with under(0o022) as base:
        old = base / "old"
        old.write_bytes(b"kept")
        os.chmod(old, before)
        tighten(old)
        assert mode(old) == (0o600 if before & 0o077 else before)
        assert old.read_bytes() == b"kept"
        tighten(base / "missing")  # nothing there: nothing to do
        assert not (base / "missing").exists()
