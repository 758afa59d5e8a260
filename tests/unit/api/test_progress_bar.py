"""api/progress_bar.py: a job's progress as a bar redrawn in place on a terminal, and as plain
lines (one per stage and per tenth of the way) otherwise; each ends with the job's outcome."""

from __future__ import annotations

import io
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from api.progress_bar import job_printer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def job(state: str, done: int = 0, total: int | None = None, stage: str = "") -> dict[str, Any]:
    return {"kind": "production", "state": state, "done": done, "total": total, "stage": stage}


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    show = job_printer(out)
    show(job("queued"))
    for done in range(0, 1001, 50):
        show(job("running", done, 1000, "gathering events"))
    show(job("running", 3, 7, "writing review files"))
    show(job("succeeded", 7, 7, "writing review files"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "production queued..."
    assert lines[1].startswith("production gathering events: [") and lines[1].endswith("(0%)")
    tenths = [line for line in lines if line.startswith("production gathering events")]
    assert len(tenths) == 11 and tenths[-1].endswith("1000/1000 (100%)")
    assert lines[-2].startswith("production writing review files: [") and "3/7" in lines[-2]
    assert lines[-1] == "production succeeded" and "\r" not in out.getvalue()


def test_a_bar_redrawn_in_place_on_a_terminal() -> None:
    out = Terminal()
    show = job_printer(out)
    show(job("running", 1, 4, "copying events"))
    show(job("running", 1, 4, "copying events"))  # the same: not drawn again
    show(job("running", 4, 4, "copying events"))
    show(job("failed", 4, 4, "copying events"))
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\nproduction failed\n")
    assert "[" + "#" * 30 + "] 4/4 (100%)" in text


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 10**6)), max_size=30))
def test_any_progress_is_shown_without_error_and_never_past_the_whole(
    steps: list[tuple[int, int]],
) -> None:
    out = io.StringIO()
    show = job_printer(out)
    for done, total in steps:
        show(job("running", done, total, "step"))
    show(job("cancelled"))
    for line in out.getvalue().splitlines()[:-1]:
        percent = int(line.rsplit("(", 1)[1].rstrip("%)"))
        assert 0 <= percent <= 100 and line.count("#") <= 30
    assert out.getvalue().endswith("production cancelled\n")
