"""`caxton trace`: one line per step of a conversation, in log order.

A tool call's lines carry its arguments and its result (or failure) and how long it
took; with `verbose`, a handling's line carries its journal: the host's answers
(`now`, `random`, tool results) and the agent's log lines, printed under it.

In a cluster's log (its shard claims read too), each step the log attributes names its
node, and a claim of a participant's shard between the first and the last step is a
step of its own (a takeover); outside a cluster the lines are what they always were.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from caxton.domain.events import (
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    HostCall,
    MessageDeadLettered,
    MessageHandled,
    MessageQuarantined,
    MessageSent,
    Recorded,
    ShardClaimed,
    ShardReleased,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import replace
from caxton.domain.ids import PLATFORM, shard_stream, split_instance_key
from caxton.domain.placement import shard_of
from caxton.domain.stages import happened_ms, queue_wait_us
from caxton.replay.calls import excerpt, journal_lines, result_body, took
from caxton.replay.nodes import NO_HOLDERS, REASONS, holders_after, node_of, on_shard
from caxton.replay.recording import participants


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
    node: str = ""
    """The node of a cluster that made the step ("" outside a cluster, or when the log
    does not say: what a client sent)."""
    takeover: ShardClaimed | None = field(default=None, compare=False)
    """The claim a `takeover` line shows (`agent`: the participants it moved)."""
    arguments: str = ""
    """A `tool-called` line's arguments (JSON text)."""
    result: str = ""
    """A `tool-returned` line's result (MCP's `CallToolResult` as JSON text)."""
    journal: tuple[HostCall, ...] = field(default=(), compare=False)
    """A handling's host answers and log lines, in order (verbose traces only)."""
    waited_us: int | None = None
    """A handling's line: how long the message waited in the mailbox (None: not recorded)."""
    took_us: int | None = None
    """A handling's line: how long the guest call took, its tool waits included."""
    tools_us: int | None = None
    """A handling's line: how much of `took_us` it waited for tools."""

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
        if self.node:
            data["node"] = self.node
        if self.arguments:
            data["arguments"] = self.arguments
        if self.result:
            data["result"] = self.result
        if self.journal:
            data["journal"] = [{"kind": c.kind, "value": c.value} for c in self.journal]
        for key in ("waited_us", "took_us", "tools_us"):
            value = getattr(self, key)
            if value is not None:
                data[key] = value
        if self.takeover is not None:
            claim = self.takeover
            data["takeover"] = {
                "shard": claim.shard,
                "from": claim.previous,
                "to": claim.node,
                "reason": claim.reason,
                "epoch": claim.epoch,
            }
        return data


class TraceView:
    """Turns recorded events into trace lines; remembers performatives and send times by
    message id and, in a cluster's log, who holds each shard and which shards the
    participants are on.

    Each line shows when its step really happened where the log recorded it: a
    handling when its message left the mailbox, a tool call when it was made or
    answered. A handling's tool events are committed before its `MessageHandled`, so
    their lines are held back until it comes and follow its `received` line then.

    `agents`: the conversation's participants when known beforehand (a whole history),
    so that a takeover of a shard whose agent takes part only later is shown too;
    `verbose`: handlings' lines carry their journals."""

    def __init__(self, agents: Iterable[str] = (), *, verbose: bool = False) -> None:
        self._verbose = verbose
        self._performatives: dict[str, str] = {}
        self._sent_at: dict[str, int] = {}
        self._holders = NO_HOLDERS
        self._agents: dict[str, None] = dict.fromkeys(agents)
        self._shards = {shard_of(a) for a in self._agents}
        self._conversation = ""
        self._held: list[TraceLine] = []
        """The tool lines of the handling of `_held_for`, until its own line comes."""
        self._held_for = ""
        self._held_us = 0

    def lines(self, recorded: Recorded) -> list[TraceLine]:
        """The lines of one event: the steps it makes, a takeover, or none (yet)."""
        event = recorded.event
        if isinstance(event, ShardClaimed | ShardReleased):
            self._holders = holders_after(self._holders, recorded)
            takeover = self._takeover(recorded) if isinstance(event, ShardClaimed) else []
            return self._release(takeover) if takeover else takeover
        lines = self._steps(recorded)
        if not lines:
            return lines
        self._conversation = self._conversation or lines[0].conversation_id
        for name in participants([recorded]):
            if name not in self._agents:
                self._agents[name] = None
                self._shards.add(shard_of(name))
        node = node_of(recorded, self._holders)
        return self._in_order(
            recorded, [replace(line, node=node) for line in lines] if node else lines
        )

    def flush(self) -> list[TraceLine]:
        """The tool lines still held back (a handling whose own event is not in the log)."""
        return self._release([])

    def _in_order(self, recorded: Recorded, lines: list[TraceLine]) -> list[TraceLine]:
        """Holds a handling's tool lines back, and puts them after its own line when that
        line's time was recorded (before it otherwise, as they were committed)."""
        event = recorded.event
        if isinstance(event, ToolCalled) and event.message_id:
            earlier = self._release([]) if event.message_id != self._held_for else []
            self._held_for = event.message_id
            self._held += lines
            return earlier
        if self._held and isinstance(event, _TOOL_EVENTS):
            if isinstance(event, ToolReturned | ToolFailed):
                self._held_us += event.duration_us
            self._held += lines
            return []
        if (
            self._held
            and isinstance(event, MessageHandled | AgentTrapped)
            and event.message_id == self._held_for
            and lines[0].took_us is not None
        ):
            own = replace(lines[0], tools_us=self._held_us)
            return [own, *lines[1:], *self._release([])]
        return self._release(lines)

    def _release(self, lines: list[TraceLine]) -> list[TraceLine]:
        """The held tool lines, then `lines`."""
        if not self._held:
            return lines
        held, self._held, self._held_for, self._held_us = self._held, [], "", 0
        return [*held, *lines]

    def _takeover(self, recorded: Recorded) -> list[TraceLine]:
        claim = recorded.event
        assert isinstance(claim, ShardClaimed)
        if not self._conversation or claim.shard not in self._shards:
            return []
        return [
            TraceLine(
                position=recorded.position,
                at=recorded.at,
                conversation_id=self._conversation,
                agent=",".join(on_shard(claim.shard, self._agents)),
                message="",
                status="takeover",
                node=claim.node,
                takeover=claim,
            )
        ]

    def _steps(self, recorded: Recorded) -> list[TraceLine]:
        event = recorded.event
        position, at = recorded.position, recorded.at
        match event:
            case MessageSent(message=m):
                self._performatives[m.id] = m.performative.value
                self._sent_at[m.id] = at
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
                line = TraceLine(
                    position=position,
                    at=at,
                    conversation_id=event.conversation_id,
                    agent=event.agent,
                    message=self._performatives.get(event.message_id, "?"),
                    status="failed" if event.error else "received",
                    message_id=event.message_id,
                    error=event.error,
                    journal=event.journal if self._verbose else (),
                )
                return [self._timed(line, event)]
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
            case MessageQuarantined():
                return [
                    TraceLine(
                        position=position,
                        at=at,
                        conversation_id=event.conversation_id,
                        agent=event.agent,
                        message=self._performatives.get(event.message_id, "?"),
                        status="quarantined",
                        message_id=event.message_id,
                        error=f"re-executing it trapped in a memory rebuild: {event.reason}",
                    )
                ]
            case AgentTrapped() if event.conversation_id:
                line = TraceLine(
                    position=position,
                    at=at,
                    conversation_id=event.conversation_id,
                    agent=event.agent,
                    message=self._performatives.get(event.message_id, "?"),
                    status="trapped",
                    message_id=event.message_id,
                    error=f"{event.kind}: {event.reason}",
                )
                return [self._timed(line, event)]
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

    def _timed(self, line: TraceLine, event: MessageHandled | AgentTrapped) -> TraceLine:
        """A handling's line at the moment its message left the mailbox, with its queue
        wait and duration, when the log recorded them (as it was otherwise)."""
        if not event.dequeued_us:
            return line
        sent_at = self._sent_at.get(event.message_id)
        return replace(
            line,
            at=event.dequeued_us // 1000,
            waited_us=queue_wait_us(sent_at, event.dequeued_us) if sent_at is not None else None,
            took_us=event.duration_us,
        )


_TOOL_EVENTS = (
    ToolCalled,
    ToolReturned,
    ToolFailed,
    BreakerOpened,
    BreakerHalfOpened,
    BreakerClosed,
)


def tool_line(recorded: Recorded) -> TraceLine:
    """A tool call's steps, and its breaker's changes, as trace lines."""
    event = recorded.event
    status, error, duration_us, arguments, result = "", "", 0, "", ""
    match event:
        case ToolCalled():
            status, arguments = "tool-called", event.arguments
        case ToolReturned():
            status, duration_us, result = "tool-returned", event.duration_us, event.result
            error = f"truncated from {event.size} bytes" if event.truncated else ""
        case ToolFailed():
            status, error, duration_us = "tool-failed", event.reason, event.duration_us
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
        at=happened_ms(recorded),
        conversation_id=event.conversation_id,
        agent=event.agent or PLATFORM,
        message=took(duration_us) if duration_us else "",
        status=status,
        error=error,
        tool=tool,
        arguments=arguments,
        result=result,
    )


def claim_streams(history: Iterable[Recorded]) -> list[str]:
    """The streams of the shards a conversation's participants live on: in a cluster's
    log, their claims are part of its trace (outside a cluster, nothing claims them)."""
    return [shard_stream(s) for s in sorted({shard_of(name) for name in participants(history)})]


def trace_lines(history: Iterable[Recorded], *, verbose: bool = False) -> list[TraceLine]:
    """The lines of a conversation's events (and, in a cluster, its participants' shard
    claims), in log order; takeovers only between the first and the last step."""
    ordered = sorted(history, key=lambda r: r.position)
    view = TraceView(participants(ordered), verbose=verbose)
    lines = [line for recorded in ordered for line in view.lines(recorded)]
    lines += view.flush()
    while lines and lines[-1].takeover is not None:  # after the last step: not this story
        lines.pop()
    return lines


def format_line(line: TraceLine) -> str:
    """`[03:23:45.123] agent="manager" message="cfp" status="sent"` and what else is known;
    in a cluster, `node="n1"` after the time when the log says which node made the step."""
    at = f"[{_clock(line.at)}]" + (f' node="{line.node}"' if line.node else "")
    if line.takeover is not None:
        claim = line.takeover
        why = REASONS.get(claim.reason, claim.reason)
        text = f'{at} status="takeover" shard="{claim.shard}" from="{claim.previous or "-"}"'
        text += f' reason="{why}" epoch="{claim.epoch}"'
        return text + (f' agent="{line.agent}"' if line.agent else "")
    if line.tool:  # a tool call: no message; how long it took instead, and what went in and out
        spent = f' took="{line.message}"' if line.message else ""
        text = f'{at} agent="{line.agent}" tool="{line.tool}" status="{line.status}"' + spent
        if line.arguments:
            text += f" args={excerpt(line.arguments, TOOL_EXCERPT)}"
        if line.result:
            text += f" result={excerpt(result_body(line.result), TOOL_EXCERPT)}"
        return text + (f' error="{line.error}"' if line.error else "")
    text = f'{at} agent="{line.agent}" message="{line.message}" status="{line.status}"'
    if line.to:
        text += f' to="{line.to}"'
    for name, us in (("waited", line.waited_us), ("took", line.took_us), ("tools", line.tools_us)):
        if us is not None and (us or name != "tools"):
            text += f' {name}="{took(us)}"'
    if line.error:
        text += f' error="{line.error}"'
    return text


TOOL_EXCERPT = 200
"""Characters of a tool call's arguments or result on its line (`--json` has them whole)."""


def journal_text(line: TraceLine) -> list[str]:
    """A verbose trace's lines under a handling: its journal, one entry a line, indented."""
    return [f"    {entry}" for entry in journal_lines(line.journal)]


def _agent_of(receiver: str) -> str:
    return split_instance_key(receiver)[0] if "#" in receiver else receiver


def _clock(at: int) -> str:
    moment = datetime.fromtimestamp(at / 1000, tz=UTC)
    return moment.strftime("%H:%M:%S.") + f"{at % 1000:03d}"


def _iso(at: int) -> str:
    return datetime.fromtimestamp(at / 1000, tz=UTC).isoformat(timespec="milliseconds")
