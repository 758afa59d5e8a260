"""Python's cycle collector during a long pass over the log (a rebuild, a big catch-up)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Keep what the process already holds out of the collector's full collections meanwhile.

    A long pass keeps objects alive as it goes (parsed ids, folded entries), which sets off full
    collections, and each one walks the whole heap the pass started with: about a fifth of a
    rebuild's time (bench/rebuild_views.py). Objects the pass makes are collected as ever.
    A process that froze its heap already (the server, at start) is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
