"""Where time and fresh ids come from; the domain gets them as arguments."""

from __future__ import annotations

import os
import secrets
import time
import uuid
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    """Wall-clock milliseconds since the Unix epoch."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def fresh_id() -> str:
    """A random 32-hex-character id for messages and conversations made outside agents."""
    return uuid.uuid4().hex


def random_u64() -> int:
    return int.from_bytes(os.urandom(8), "little")


def client_address() -> str:
    """An address for an external caller waiting for replies: `client:<random>`."""
    return "client:" + secrets.token_hex(6)
