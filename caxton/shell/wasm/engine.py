"""The one wasmtime Engine per server, configured for epoch deadlines, and its ticker."""

from __future__ import annotations

import threading

import wasmtime

TICK_MS = 5
"""How often the epoch advances; a deadline is rounded up to whole ticks."""

MEMORY_RESERVATION = 8 << 20
"""Virtual address space reserved per linear memory up front. The default (4 GiB plus
guard) makes 10k agents reserve ~40 TiB; memories larger than this still work, they
are moved when they grow past it (bounds-checked, not guard-page-checked)."""

MEMORY_GUARD_SIZE = 64 << 10
MEMORY_RESERVATION_FOR_GROWTH = 8 << 20


def make_engine() -> wasmtime.Engine:
    """An engine with epoch interruption on and bounded address-space reservations."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.memory_reservation = MEMORY_RESERVATION
    config.memory_guard_size = MEMORY_GUARD_SIZE
    config.memory_reservation_for_growth = MEMORY_RESERVATION_FOR_GROWTH
    return wasmtime.Engine(config)


def deadline_ticks(timeout_ms: int) -> int:
    """Epoch ticks for a wall-clock budget: never early, at most one tick late."""
    return max(1, -(-timeout_ms // TICK_MS) + 1)


class EpochTicker:
    """A daemon thread that increments the engine's epoch every `TICK_MS`."""

    def __init__(self, engine: wasmtime.Engine, tick_ms: int = TICK_MS) -> None:
        self._engine = engine
        self._tick_s = tick_ms / 1000
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="caxton-epoch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._tick_s):
            self._engine.increment_epoch()
