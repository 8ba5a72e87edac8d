"""What one guest call sees of the host: send, log, now, random, call-tool, journaled.

A `CallContext` lives for one `init` or `handle` call. It validates what the agent
sends, journals every nondeterministic answer and (bounded) the agent's log lines,
and buffers it all; after the call
returns, the domain routes the sends and turns the buffer into events
(`caxton.domain.handling`). Host functions may run on a worker thread: they only
append to this object's lists.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import orjson

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.errors import InvalidMessage
from caxton.domain.events import Event, HostCall
from caxton.domain.journal import (
    MAX_LOG_BYTES,
    MAX_LOG_LINES,
    dropped_count,
    dropped_entry,
    log_entry,
    log_size,
)
from caxton.domain.sending import outgoing, outgoing_draft, outgoing_envelope
from caxton.domain.tools import (
    call_fault,
    call_policy,
    is_granted,
    journal_value,
    not_granted,
    parse_arguments,
    tool_call_id,
    unknown_server,
)
from caxton.shell.runtime.clock import Clock, random_u64
from caxton.shell.telemetry.logs import message_context
from caxton.shell.tools.calls import (
    ToolAnswer,
    ToolCall,
    ToolCaller,
    failure_text,
    recorded_call,
)
from caxton.shell.wasm import SendRefused, ToolFailed

log = logging.getLogger("caxton.agent")


@dataclass(slots=True)
class CallContext:
    """The host side of one guest call."""

    agent: str
    cause: AclMessage | None
    clock: Clock
    max_content_bytes: int
    journal: list[HostCall] = field(default_factory=list)
    sent: list[AclMessage] = field(default_factory=list)
    """What the guest sent, checked and with the host's fields: routed after the call."""
    logs: list[tuple[int, str]] = field(default_factory=list)
    """The guest's log lines (level, text), written once the handling is committed."""
    tools: ToolAccess | None = None
    tool_events: list[Event] = field(default_factory=list)
    tool_calls: int = 0
    journaled_logs: JournaledLogs | None = None
    """Made by the first log line: an agent that does not log pays nothing for it."""

    @property
    def may_wait(self) -> bool:
        """Whether the call may wait for a tool: it must then run on the worker pool."""
        return self.tools is not None and self.tools.may_call

    def send(self, envelope_json: str) -> str:
        """Checks, addresses and buffers an envelope; returns its id. The envelope is
        decoded straight into a draft (msgspec), and what that refuses or doubts is
        parsed as any JSON and checked field by field, which says what is wrong."""
        sent = self.sent
        try:
            draft = decode_draft(envelope_json)
        except (msgspec.MsgspecError, ValueError):
            message = None
        else:
            message = outgoing_draft(
                draft,
                agent=self.agent,
                cause=self.cause,
                index=len(sent),
                max_content_bytes=self.max_content_bytes,
            )
        if message is None:
            message = self._checked(envelope_json)
        sent.append(message)
        return message.id

    def _checked(self, envelope_json: str) -> AclMessage:
        """`send`'s path for what the draft decoder refuses or `outgoing_draft` doubts:
        parsed as any JSON, checked field by field, refused with the reason."""
        index = len(self.sent)
        try:
            try:  # orjson first; what it refuses (NaN, huge integers, bad JSON) goes to json
                data = orjson.loads(envelope_json)
            except orjson.JSONDecodeError:
                return outgoing(
                    envelope_json,
                    agent=self.agent,
                    cause=self.cause,
                    index=index,
                    max_content_bytes=self.max_content_bytes,
                )
            return outgoing_envelope(
                data,
                agent=self.agent,
                cause=self.cause,
                index=index,
                max_content_bytes=self.max_content_bytes,
            )
        except InvalidMessage as exc:
            raise SendRefused(str(exc)) from None

    def log(self, level: str, text: str) -> None:
        self.logs.append((_LEVELS.get(level, logging.INFO), text[:4096]))
        journaled = self.journaled_logs
        if journaled is None:
            journaled = self.journaled_logs = JournaledLogs()
        journaled.add(self.journal, level, text)

    def write_logs(self) -> None:
        """Writes the guest's log lines: after the handling is committed, so that nothing
        is seen outside that the log does not hold."""
        if self.logs:
            context = message_context(self.cause, self.agent)
            for level, text in self.logs:
                log.log(level, "%s", text, extra=context)
            self.logs.clear()

    def now(self) -> int:
        value = self.clock.now_ms()
        self.journal.append(HostCall(kind="now", value=str(value)))
        return value

    def random(self) -> int:
        value = random_u64()
        self.journal.append(HostCall(kind="random", value=str(value)))
        return value

    def call_tool(self, server: str, tool: str, args_json: str) -> str:
        if self.tool_calls >= MAX_TOOL_CALLS:  # a loop: stop it rather than record it forever
            raise ToolLoop(f"more than {MAX_TOOL_CALLS} tool calls while handling one message")
        cause = self.cause
        scope = cause.id if cause is not None else f"{self.agent}/init/{self.clock.now_ms()}"
        call_id = tool_call_id(scope, self.tool_calls)
        self.tool_calls += 1
        conversation = cause.conversation_id if cause is not None else ""
        called_us = time.time_ns() // 1000
        if fault := call_fault(server, tool):  # refused, the names kept short in the log
            answer = ToolAnswer(kind="refused", reason=fault)
            server, tool = server[:NAME_EXCERPT], tool[:NAME_EXCERPT]
        elif len(args_json) > self.max_content_bytes:  # refused, and kept short in the log
            answer = ToolAnswer(
                kind="refused", reason=f"arguments are over {self.max_content_bytes} bytes"
            )
            args_json = args_json[:1024] + "…"
        else:
            answer = (self.tools or ToolAccess()).call(
                self.agent, server, tool, args_json, conversation
            )
        self.tool_events.extend(
            recorded_call(
                call_id=call_id,
                server=server,
                tool=tool,
                args_json=args_json,
                answer=answer,
                agent=self.agent,
                conversation_id=conversation,
                message_id=cause.id if cause is not None else "",
                called_us=called_us,
                answered_us=time.time_ns() // 1000,
            )
        )
        if answer.result is None:
            reason = failure_text(answer)
            entry = journal_value(server, tool, args_json, error=reason)
            self.journal.append(HostCall(kind="call-tool", value=entry))
            raise ToolFailed(reason)
        entry = journal_value(server, tool, args_json, ok=answer.result)
        self.journal.append(HostCall(kind="call-tool", value=entry))
        return answer.result


_ABSENT: Any = None
"""None as the default of a field typed `str`: msgspec takes defaults as they are."""


class _Draft(msgspec.Struct, forbid_unknown_fields=True):
    """An agent's envelope as msgspec reads it (a `caxton.domain.sending.Draft`): the
    types only, `outgoing_draft` checks the rest. What does not fit takes the slow path,
    which says what is wrong. `conversation_id` and `protocol` may not be null here, so
    that None is where they are absent: a completed reply takes the cause's then."""

    performative: Performative
    receivers: tuple[str, ...] | None = None
    content: str | None = None
    language: str | None = None
    ontology: str | None = None
    protocol: str = _ABSENT
    conversation_id: str = _ABSENT
    reply_with: str | None = None
    in_reply_to: str | None = None
    reply_by: Annotated[int, msgspec.Meta(ge=0, le=(1 << 63) - 1)] | None = None
    """msgspec bounds an int64 at most; orjson, the slow path's parser, reads integers
    past 2**64 - 1 as floats (refused there), where msgspec reads them as integers."""
    id: str | None = None
    sender: str | None = None
    traceparent: str | None = None


decode_draft = msgspec.json.Decoder(_Draft).decode
"""An agent's envelope straight into a `Draft`; raises `msgspec.MsgspecError` for what
does not fit one, and ValueError for text that is not UTF-8 (a lone surrogate)."""


MAX_TOOL_CALLS = 1_000
NAME_EXCERPT = 128  # what is recorded of a server or tool name that is not a name
"""Tool calls one handling may make; the next one traps the instance (host-error)."""


@dataclass(slots=True)
class JournaledLogs:
    """The log lines of one call kept in its journal, within `caxton.domain.journal`'s
    bounds: past either bound, every further line is counted in one `log-dropped` entry
    (where the first was dropped), so the journal stays in the order things happened."""

    lines: int = 0
    size: int = 0
    dropped_at: int = -1
    """The journal index of the `log-dropped` entry (-1: nothing dropped yet)."""

    def add(self, journal: list[HostCall], level: str, text: str) -> None:
        if self.dropped_at < 0:
            entry = log_entry(level, text)
            size = self.size + log_size(entry)
            if self.lines < MAX_LOG_LINES and size <= MAX_LOG_BYTES:
                self.lines += 1
                self.size = size
                journal.append(entry)
                return
            self.dropped_at = len(journal)
            journal.append(dropped_entry(1))
            return
        journal[self.dropped_at] = dropped_entry(dropped_count(journal[self.dropped_at]) + 1)


class ToolLoop(RuntimeError):
    """Too many tool calls in one handling: not a refusal, so the guest traps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolAccess:
    """What one agent may call, and the bridge that calls it (None: no tools configured)."""

    bridge: ToolCaller | None = None
    grants: tuple[str, ...] = ()
    timeout_ms: int = 0
    breaker_threshold: int = 0

    @property
    def may_call(self) -> bool:
        """Whether calls may wait for a tool (the agent then runs on the worker pool)."""
        return self.bridge is not None and bool(self.grants)

    def call(
        self, agent: str, server: str, tool: str, args_json: str, conversation: str
    ) -> ToolAnswer:
        """Refuses what the rules refuse, and asks the bridge for the rest."""
        bridge = self.bridge
        if bridge is None:
            return ToolAnswer(kind="refused", reason="no tool server is configured on this server")
        config = bridge.servers.get(server)
        if config is None:
            return ToolAnswer(kind="refused", reason=unknown_server(server, bridge.servers))
        if not is_granted(self.grants, server, tool):
            return ToolAnswer(kind="refused", reason=not_granted(agent, server, tool))
        arguments = parse_arguments(args_json)
        if isinstance(arguments, str):
            return ToolAnswer(kind="refused", reason=arguments)
        policy = call_policy(
            timeout_ms=config.timeout_ms,
            breaker_threshold=config.breaker_threshold,
            breaker_reset_ms=config.breaker_reset_ms,
            agent=agent,
            agent_timeout_ms=self.timeout_ms,
            agent_threshold=self.breaker_threshold,
        )
        return bridge.call_blocking(
            ToolCall(
                server=server,
                tool=tool,
                arguments=arguments,
                policy=policy,
                agent=agent,
                conversation_id=conversation,
            )
        )


_LEVELS = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}
