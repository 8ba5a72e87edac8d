"""A counted module for tests/bench/test_callgrind.py: `ops` of one known operation, with
an optional second thread busy beside the window (it must not be counted)."""

from __future__ import annotations

import threading

from bench.scenario import Window


def operation(i: int) -> int:
    return sum(j * j for j in range(i % 7, 40))


def counted(scenario: str, ops: int, window: Window) -> int:
    stop = threading.Event()
    busy = threading.Thread(target=lambda: _spin(stop), daemon=True)
    if scenario == "loop_beside_a_busy_thread":
        busy.start()
    for i in range(200):  # warm-up
        operation(i)
    window.begin()
    for i in range(ops):
        operation(i)
    window.end()
    stop.set()
    return ops


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        operation(3)
