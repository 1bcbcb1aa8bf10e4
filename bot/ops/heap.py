"""Short garbage-collection pauses in long-running processes.

CPython's full collection walks every object it tracks. The serving process
holds about 140,000 from its imports alone, and a command process as many
again with its matching index, so each full collection stalled the process
for 40-70 ms: under a burst of commands, every request in flight waited for
it (it was the slowest acks of the Slack load bench). What a process holds
once started it holds for life: moved out of the collector's sight, a full
collection walks only what came after.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


def settle() -> None:
    """Call once a process has loaded what it keeps (not in tests: it pins the garbage
    of every test before it)."""
    gc.collect()  # start-up's garbage goes now, not into the frozen generation
    gc.freeze()


@contextmanager
def paused() -> Iterator[None]:
    """No collection while many objects that will live on are made at once (an index
    load): each one would walk them all again, for garbage there is none of."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
