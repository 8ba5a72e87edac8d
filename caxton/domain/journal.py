"""A handling's journal: the host's answers a replay feeds back, and the agent's log lines.

Answers (`now`, `random`, `call-tool`) are consumed by kind, in order, by whatever runs
the agent again (`caxton replay --with`, a rebuild of an agent's memory). Log lines are
notes for the reader: they answer nothing, so a replaying host skips them
(`answers`), and they are bounded per handling (`MAX_LOG_LINES`, `MAX_LOG_BYTES`;
the lines past either bound are counted in one `log-dropped` entry).
"""

from __future__ import annotations

from collections.abc import Iterable

from caxton.domain.events import HostCall

LOG = "log"
"""A log line the agent wrote: value `"<level> <text>"`."""
LOG_DROPPED = "log-dropped"
"""How many more log lines the handling wrote past the bounds: value `"<count>"`."""
NOTES = frozenset({LOG, LOG_DROPPED})
"""Kinds that answer nothing: what a replaying host skips."""

MAX_LOG_LINES = 64
"""Log lines journaled per handling (or `init`)."""
MAX_LOG_BYTES = 16 * 1024
"""UTF-8 bytes of log text journaled per handling (or `init`)."""
MAX_LOG_LINE = 1024
"""Characters of one line journaled; a longer line is cut and ends in `…`."""


def answers(journal: Iterable[HostCall]) -> tuple[HostCall, ...]:
    """The entries a replaying host feeds back, in order: the journal without its notes."""
    return tuple(call for call in journal if call.kind not in NOTES)


def log_entry(level: str, text: str) -> HostCall:
    """A log line as journaled, cut to `MAX_LOG_LINE` characters."""
    if len(text) > MAX_LOG_LINE:
        text = text[: MAX_LOG_LINE - 1] + "…"
    return HostCall(kind=LOG, value=f"{level} {text}")


def log_size(entry: HostCall) -> int:
    """What a journaled line counts against `MAX_LOG_BYTES`."""
    return len(entry.value.encode("utf-8", "replace"))


def dropped_entry(count: int) -> HostCall:
    return HostCall(kind=LOG_DROPPED, value=str(count))


def read_log(entry: HostCall) -> tuple[str, str]:
    """(level, text) of a `log` entry."""
    level, _, text = entry.value.partition(" ")
    return level, text


def dropped_count(entry: HostCall) -> int:
    """The count of a `log-dropped` entry (0 when it is not one a host wrote)."""
    return int(entry.value) if entry.value.isascii() and entry.value.isdigit() else 0


__all__ = [
    "LOG",
    "LOG_DROPPED",
    "MAX_LOG_BYTES",
    "MAX_LOG_LINE",
    "MAX_LOG_LINES",
    "NOTES",
    "answers",
    "dropped_count",
    "dropped_entry",
    "log_entry",
    "log_size",
    "read_log",
]
