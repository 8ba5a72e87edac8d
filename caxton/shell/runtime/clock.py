"""Where time and fresh ids come from; the domain gets them as arguments."""

from __future__ import annotations

import os
import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """Wall-clock milliseconds since the Unix epoch."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class _RandomBytes:
    """`os.urandom`, read 4 KiB at a time and handed out in slices.

    Each `os.urandom` call is a getrandom syscall made with the GIL released, so on a
    busy server every fresh id let another thread (the epoch ticker, the checkpointer,
    an exporter) take the GIL from the event loop: three calls per client message cost
    ~18 µs of it under load, against ~1 µs when idle. The bytes are the same quality;
    a forked child starts a pool of its own, so it never repeats its parent's."""

    _SIZE = 4096

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Lock()  # host functions may run on worker threads
        self._bytes = b""
        self._at = 0

    def take(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._bytes):
                self._bytes, at = os.urandom(max(self._SIZE, n)), 0
            self._at = at + n
            return self._bytes[at : at + n]


_RANDOM = _RandomBytes()
os.register_at_fork(after_in_child=_RANDOM._reset)


def fresh_id() -> str:
    """A random 32-hex-character id for messages and conversations made outside agents."""
    return _RANDOM.take(16).hex()


def random_u64() -> int:
    return int.from_bytes(_RANDOM.take(8), "little")


def client_address() -> str:
    """An address for an external caller waiting for replies: `client:<random>`."""
    return "client:" + _RANDOM.take(6).hex()
