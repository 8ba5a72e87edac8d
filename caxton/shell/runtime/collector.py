"""The cyclic garbage collector's thresholds for a server process (ADR 0013).

A server's state is immutable and acyclic (the folded world), and what a message
leaves behind is freed by reference counting; the cyclic collector finds little.
At CPython's default thresholds (700, 10, 10) it still ran often enough under load
to cost 13% of the loop's CPU with 100 agents and 38% with 10,000 (every full
collection rescans every agent and the live world). These thresholds collect the
young generation every 20,000 net allocations instead of 700; cycles are still
found, a little later.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

THRESHOLDS = (20_000, 20, 10)


def tune_collector() -> None:
    """Sets this process's collector thresholds for a server (process-wide)."""
    gc.set_threshold(*THRESHOLDS)


@contextlib.contextmanager
def paused_collector() -> Iterator[None]:
    """Pauses the cyclic garbage collector (reference counting still frees everything a
    fold lets go): over a whole log it would scan the growing world again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
