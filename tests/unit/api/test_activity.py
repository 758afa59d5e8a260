"""api/activity.py: the sessions' last-use times, one table for every server process."""

from __future__ import annotations

import stat
import threading
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api import activity
from api.activity import SessionActivity


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "session-activity"


def test_what_one_process_sees_the_other_reads(path: Path) -> None:
    one, two = SessionActivity(path), SessionActivity(path)  # two mappings, as two processes
    session = str(uuid4())
    assert two.get(session, 7.0) == 7.0
    one[session] = 1_000.25
    assert two.get(session, 0.0) == 1_000.25
    two[session] = 2_000.5
    assert one.get(session, 0.0) == 2_000.5
    assert one.pop(session) == 2_000.5
    assert two.get(session, 3.0) == 3.0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_closing_twice_is_closing_once(path: Path) -> None:
    table = SessionActivity(path)
    table.close()
    table.close()


def test_a_file_that_is_not_one_is_refused(path: Path) -> None:
    path.write_bytes(b"\x01" * (activity.HEADER + activity.SLOTS * activity.SLOT))
    with pytest.raises(ValueError, match="not a session activity file"):
        SessionActivity(path)


def test_sessions_beyond_reach_are_kept_in_this_process(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All ids made to want the same slot: past REACH of them, this process keeps the rest."""
    monkeypatch.setattr(activity, "REACH", 3)
    table = SessionActivity(path)
    sessions = [str(UUID(int=(i << 64) | 5)) for i in range(1, 6)]  # same low 8 bytes
    for i, session in enumerate(sessions):
        table[session] = float(i + 1)
    assert [table.get(s, 0.0) for s in sessions] == [1.0, 2.0, 3.0, 4.0, 5.0]
    other = SessionActivity(path)
    assert [other.get(s, 0.0) for s in sessions] == [1.0, 2.0, 3.0, 0.0, 0.0]
    table.pop(sessions[0])
    table[sessions[3]] = 9.0  # a slot given up is taken again
    assert other.get(sessions[3], 0.0) == 9.0


def test_threads_claiming_slots_at_once_lose_none(path: Path) -> None:
    table = SessionActivity(path)
    sessions = [str(uuid4()) for _ in range(400)]

    def touch(part: list[str]) -> None:
        for session in part:
            table[session] = 42.0

    threads = [threading.Thread(target=touch, args=(sessions[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other = SessionActivity(path)
    assert all(other.get(s, 0.0) == 42.0 for s in sessions)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(range(12)), st.sampled_from(["set", "pop"]), st.integers(1, 10**12)
        ),
        max_size=60,
    )
)
def test_the_table_answers_as_a_dict_would(steps: list[tuple[int, str, int]]) -> None:
    """Any sequence of uses and ends, through two mappings, reads as one dict of whole ms."""
    import tempfile

    ids = [str(UUID(int=(i % 3 << 64) | 11)) if i < 6 else str(UUID(int=i)) for i in range(12)]
    with tempfile.TemporaryDirectory() as tmp:
        tables = [SessionActivity(Path(tmp) / "a"), SessionActivity(Path(tmp) / "a")]
        model: dict[str, float] = {}
        for n, (i, op, millis) in enumerate(steps):
            table, session, seen = tables[n % 2], ids[i], millis / 1000
            if op == "set":
                table[session] = seen
                model[session] = seen
            else:
                assert table.pop(session) == model.pop(session, None)
        for table in tables:
            assert {s: table.get(s, -1.0) for s in ids} == {s: model.get(s, -1.0) for s in ids}
