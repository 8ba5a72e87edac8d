"""What the runtime asks of the tool bridge and what it gets back (no MCP imports here)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from caxton.domain.events import Event, ToolCalled, ToolFailed, ToolReturned
from caxton.domain.tools import CallPolicy
from caxton.shell.tools.settings import ToolServerConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall:
    """One call, already granted and with valid arguments."""

    server: str
    tool: str
    arguments: dict[str, Any]
    policy: CallPolicy
    agent: str = ""
    conversation_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolAnswer:
    """A call's end: `result` (the text the agent receives) or a failure `kind` and `reason`.

    `before` holds the breaker events recorded as the call was admitted (a trial), `after`
    those its end caused (opened, closed)."""

    result: str | None = None
    kind: str = ""
    reason: str = ""
    duration_us: int = 0
    truncated: bool = False
    size: int = 0
    before: tuple[Event, ...] = ()
    after: tuple[Event, ...] = field(default=())


class ToolCaller(Protocol):
    """The bridge as the runtime sees it."""

    @property
    def servers(self) -> Mapping[str, ToolServerConfig]:
        """The configured tool servers by name."""
        ...

    def call_blocking(self, call: ToolCall) -> ToolAnswer:
        """Makes the call from a worker thread and waits for its answer (never raises)."""
        ...

    async def call(self, call: ToolCall) -> ToolAnswer:
        """Makes the call on the event loop (never raises)."""
        ...


def recorded_call(
    *,
    call_id: str,
    server: str,
    tool: str,
    args_json: str,
    answer: ToolAnswer,
    agent: str = "",
    conversation_id: str = "",
    message_id: str = "",
    called_us: int = 0,
    answered_us: int = 0,
) -> list[Event]:
    """The events of one call, in the order things happened: called, the breaker's trial,
    returned or failed (the `reason` as the agent received it), what the end did to the
    breaker. `called_us` and `answered_us`: when the call was made and its answer came
    (microseconds since the Unix epoch)."""
    who = {"agent": agent, "conversation_id": conversation_id}
    ids = {"call_id": call_id, "server": server, "tool": tool, **who}
    called = ToolCalled(
        call_id=call_id,
        server=server,
        tool=tool,
        arguments=args_json,
        message_id=message_id,
        at_us=called_us,
        **who,
    )
    end: Event
    if answer.result is None:
        end = ToolFailed(
            kind=answer.kind,
            reason=failure_text(answer),
            duration_us=answer.duration_us,
            at_us=answered_us,
            **ids,
        )
    else:
        end = ToolReturned(
            result=answer.result,
            duration_us=answer.duration_us,
            truncated=answer.truncated,
            size=answer.size,
            at_us=answered_us,
            **ids,
        )
    return [called, *answer.before, end, *answer.after]


def failure_text(answer: ToolAnswer) -> str:
    """What the agent receives as `err` for a failed call: `KIND: REASON`."""
    return f"{answer.kind}: {answer.reason}"
