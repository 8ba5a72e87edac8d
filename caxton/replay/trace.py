"""`caxton trace`: one line per step of a conversation, in log order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from caxton.domain.events import (
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.ids import PLATFORM, split_instance_key


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceLine:
    position: int
    at: int
    conversation_id: str
    agent: str
    message: str
    status: str
    message_id: str = ""
    to: str = ""
    error: str = ""
    tool: str = ""
    """`server.tool` for a tool call's lines, the server for a breaker's."""

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "position": self.position,
            "time": _iso(self.at),
            "conversation_id": self.conversation_id,
            "agent": self.agent,
            "message": self.message,
            "status": self.status,
            "message_id": self.message_id,
        }
        if self.to:
            data["to"] = self.to
        if self.error:
            data["error"] = self.error
        if self.tool:
            data["tool"] = self.tool
        return data


class TraceView:
    """Turns recorded events into trace lines; remembers performatives by message id."""

    def __init__(self) -> None:
        self._performatives: dict[str, str] = {}

    def lines(self, recorded: Recorded) -> list[TraceLine]:
        event = recorded.event
        position, at = recorded.position, recorded.at
        match event:
            case MessageSent(message=m):
                self._performatives[m.id] = m.performative.value
                return [
                    TraceLine(
                        position=position,
                        at=at,
                        conversation_id=m.conversation_id,
                        agent=m.sender,
                        message=m.performative.value,
                        status="sent",
                        message_id=m.id,
                        to=",".join(m.receivers),
                    )
                ]
            case MessageHandled():
                return [
                    TraceLine(
                        position=position,
                        at=at,
                        conversation_id=event.conversation_id,
                        agent=event.agent,
                        message=self._performatives.get(event.message_id, "?"),
                        status="failed" if event.error else "received",
                        message_id=event.message_id,
                        error=event.error,
                    )
                ]
            case MessageDeadLettered():
                return [
                    TraceLine(
                        position=position,
                        at=at,
                        conversation_id=event.conversation_id,
                        agent=_agent_of(event.receiver),
                        message=self._performatives.get(event.message_id, "?"),
                        status="dead-letter",
                        message_id=event.message_id,
                        error=event.reason,
                    )
                ]
            case AgentTrapped() if event.conversation_id:
                return [
                    TraceLine(
                        position=position,
                        at=at,
                        conversation_id=event.conversation_id,
                        agent=event.agent,
                        message=self._performatives.get(event.message_id, "?"),
                        status="trapped",
                        message_id=event.message_id,
                        error=f"{event.kind}: {event.reason}",
                    )
                ]
            case (
                ToolCalled()
                | ToolReturned()
                | ToolFailed()
                | BreakerOpened()
                | BreakerHalfOpened()
                | BreakerClosed()
            ):
                return [tool_line(recorded)]
            case _:
                return []


def tool_line(recorded: Recorded) -> TraceLine:
    """A tool call's steps, and its breaker's changes, as trace lines."""
    event = recorded.event
    status, error, took = "", "", 0
    match event:
        case ToolCalled():
            status = "tool-called"
        case ToolReturned():
            status, took = "tool-returned", event.duration_us
            error = f"truncated from {event.size} bytes" if event.truncated else ""
        case ToolFailed():
            status, error, took = "tool-failed", event.reason, event.duration_us
        case BreakerOpened():
            status = "breaker-open"
            error = f"after {event.failures} failures ({event.reason}), for {event.reset_ms}ms"
        case BreakerHalfOpened():
            status = "breaker-half-open"
        case BreakerClosed():
            status = "breaker-closed"
        case _:
            raise ValueError(f"not a tool event: {type(event).__name__}")
    is_call = isinstance(event, ToolCalled | ToolReturned | ToolFailed)
    tool = f"{event.server}.{event.tool}" if is_call else event.server  # type: ignore[union-attr]
    return TraceLine(
        position=recorded.position,
        at=recorded.at,
        conversation_id=event.conversation_id,
        agent=event.agent or PLATFORM,
        message=f"{took // 1000}ms" if took else "",
        status=status,
        error=error,
        tool=tool,
    )


def trace_lines(history: Iterable[Recorded]) -> list[TraceLine]:
    view = TraceView()
    return [line for recorded in history for line in view.lines(recorded)]


def format_line(line: TraceLine) -> str:
    """`[03:23:45.123] agent="manager" message="cfp" status="sent"` and what else is known."""
    if line.tool:  # a tool call: no message; how long it took instead
        took = f' took="{line.message}"' if line.message else ""
        text = f'[{_clock(line.at)}] agent="{line.agent}" tool="{line.tool}" status="{line.status}"'
        return text + took + (f' error="{line.error}"' if line.error else "")
    text = (
        f'[{_clock(line.at)}] agent="{line.agent}" message="{line.message}" status="{line.status}"'
    )
    if line.to:
        text += f' to="{line.to}"'
    if line.error:
        text += f' error="{line.error}"'
    return text


def _agent_of(receiver: str) -> str:
    return split_instance_key(receiver)[0] if "#" in receiver else receiver


def _clock(at: int) -> str:
    moment = datetime.fromtimestamp(at / 1000, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{at % 1000:03d}"


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(timespec="milliseconds")
