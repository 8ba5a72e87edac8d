"""What one guest call came to, and how a wasmtime failure is classified into it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from caxton.domain.errors import bounded

TrapKind = Literal["trap", "timeout", "memory", "stack-overflow", "host-error"]


@dataclass(frozen=True, slots=True)
class Completed:
    """The guest returned `ok`. `duration_us` is wall time, tool waits included;
    `cpu_us` the CPU time of the thread that ran the call (waits excluded);
    `started_us` when the call began, in microseconds since the Unix epoch."""

    duration_us: int
    cpu_us: int = 0
    started_us: int = 0


@dataclass(frozen=True, slots=True)
class AgentError:
    """The guest returned `err(text)`: handled, unsuccessfully; the instance lives on."""

    text: str
    duration_us: int
    cpu_us: int = 0
    started_us: int = 0


@dataclass(frozen=True, slots=True)
class Trapped:
    """The guest trapped, ran out of time or memory, or a host function failed.

    The instance is dead afterwards (its state is unknown) and must be replaced.
    """

    kind: TrapKind
    reason: str
    duration_us: int
    cpu_us: int = 0
    started_us: int = 0


Outcome = Completed | AgentError | Trapped

_TRAP = re.compile(r"wasm trap: (.+)")
_MEMORY_FAULT = re.compile(r"in linear memory of size (0x[0-9a-f]+|\d+)")
_WASM_PAGE = 1 << 16


def classify_failure(
    message: str, *, timeout_ms: int, memory_limit: int, duration_us: int
) -> Trapped:
    """A `Trapped` from the text of the `WasmtimeError` a component call raised.

    wasmtime-py raises component traps as `WasmtimeError` (not `Trap`), so the trap
    code is not available: the "wasm trap: ..." line of the message is.
    """
    found = _TRAP.search(message)
    trap = bounded(found.group(1).strip() if found else _last_cause(message))
    if trap == "interrupt":
        return Trapped("timeout", f"timed out after {timeout_ms} ms", duration_us)
    if trap == "call stack exhausted":
        return Trapped("stack-overflow", "call stack exhausted", duration_us)
    if trap == "out of bounds memory access" and _at_memory_limit(message, memory_limit):
        return Trapped("memory", f"out of memory (limit {format_bytes(memory_limit)})", duration_us)
    if trap == "wasm `unreachable` instruction executed":
        return Trapped("trap", "unreachable", duration_us)
    return Trapped("trap", trap, duration_us)


def _at_memory_limit(message: str, memory_limit: int) -> bool:
    """A fault past the end of a memory that could not grow by one more page."""
    fault = _MEMORY_FAULT.search(message)
    if fault is None:
        return False
    size = int(fault.group(1), 0)
    return size + _WASM_PAGE > memory_limit


def _last_cause(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown failure"
    return re.sub(r"^\d+: ", "", lines[-1])


def format_bytes(size: int) -> str:
    """`1 MiB`, `512 KiB`, `1000 bytes`: the unit people configured it in."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} bytes"
