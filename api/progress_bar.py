"""A job's progress on the terminal (stderr): a bar redrawn in place on a terminal, plain lines
(one per stage, and one per tenth of the way) when stderr is a file or a pipe.

Standard library only: a bar of one line needs no more, and the remote CLI stays light.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

WIDTH = 30


def job_printer(stream: TextIO | None = None) -> Callable[[dict[str, Any]], None]:
    """A ``Client.wait_for_job`` ``on_progress`` callback writing to ``stream`` (stderr)."""
    out = sys.stderr if stream is None else stream
    tty = out.isatty()
    last: dict[str, Any] = {"line": None, "stage": None, "tenth": -1}

    def show(job: dict[str, Any]) -> None:
        done, total, stage = job.get("done", 0), job.get("total"), job.get("stage") or ""
        state = job.get("state", "")
        label = f"{job.get('kind', 'job')} {stage or state}".strip()
        if total:
            fraction = min(done / total, 1.0)
            tenth = int(fraction * 10)
            bar = "#" * int(fraction * WIDTH)
            line = f"{label}: [{bar:<{WIDTH}}] {done}/{total} ({int(fraction * 100)}%)"
        else:
            tenth = -1
            line = f"{label}: {done}" if done else f"{label}..."
        if state in ("succeeded", "failed", "cancelled"):
            if tty and last["line"] is not None:
                out.write("\n")  # keep the bar as it last stood
            out.write(f"{job.get('kind', 'job')} {state}\n")
            out.flush()
        elif tty:
            if line != last["line"]:
                out.write("\r" + line.ljust(len(last["line"] or "")))
                out.flush()
        elif stage != last["stage"] or tenth != last["tenth"]:
            out.write(line + "\n")
            out.flush()
        last.update(line=line, stage=stage, tenth=tenth)

    return show
