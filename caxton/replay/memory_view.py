"""The replay TUI's memory pane, the pure part: whose memory a step shows, and that memory
as pretty lines marked against the previous step's (`+` added, `-` gone)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from caxton.domain.events import MessageSent
from caxton.domain.ids import is_client
from caxton.domain.memory import Memory
from caxton.replay.cursor import Cursor
from caxton.replay.views import pretty

Mark = Literal[" ", "+", "-"]


@dataclass(frozen=True, slots=True)
class Subject:
    """The instance a step is about, and the positions of this step and the one before."""

    agent: str
    replica: int
    position: int
    before: int
    """The position of the previous step (0 at the first step)."""


def subject(cursor: Cursor) -> Subject | None:
    """The agent instance whose memory the pane shows at this step: the one the step is
    about (who handled, trapped, called a tool, or sent); none for a client's step."""
    recorded = cursor.recorded
    if recorded is None:
        return None
    event = recorded.event
    agent = event.message.sender if isinstance(event, MessageSent) else getattr(event, "agent", "")
    if not isinstance(agent, str) or not agent or is_client(agent):
        return None
    replica = getattr(event, "replica", 0)
    previous = cursor.timeline.event(cursor.step - 1) if cursor.step > 1 else None
    return Subject(
        agent=agent,
        replica=replica if isinstance(replica, int) else 0,
        position=recorded.position,
        before=previous.position if previous is not None else 0,
    )


def memory_lines(now: Memory, before: Memory | None) -> list[tuple[Mark, str]]:
    """`now`'s state as pretty JSON lines, each marked against `before`'s."""
    lines = _lines(now)
    if before is None:
        return [(" ", line) for line in lines]
    marked: list[tuple[Mark, str]] = []
    for line in difflib.ndiff(_lines(before), lines):
        mark = _MARKS.get(line[:1])
        if mark is not None:  # "?" lines only point at characters
            marked.append((mark, line[2:]))
    return marked


_MARKS: dict[str, Mark] = {" ": " ", "+": "+", "-": "-"}


def changed(now: Memory, before: Memory | None) -> bool:
    return before is not None and before.state != now.state


def _lines(memory: Memory) -> list[str]:
    return pretty(memory.state, "json").splitlines() if memory.state else ["(empty)"]
