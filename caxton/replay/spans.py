"""OpenTelemetry spans built from recorded events: one per send, delivery and handling.

Spans are never started on the hot path. They are made here, after the fact, from
what the log holds, with ids derived from message ids (`caxton.domain.tracing`), so
a live export, a later export and a replay agree on every id, and no span can
describe something the log does not hold. Attributes follow OpenTelemetry's messaging
semantic conventions, with the FIPA fields under `messaging.caxton.*`.

The tree follows causation: `send` is the root of a message from outside (or a child
of the caller's span, when the caller sent a `traceparent`); `deliver` (time in the
mailbox) and `process` (the handling) are children of the `send`; a message an agent
sends while handling another is a child of that `process`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from caxton.domain.events import (
    AgentTrapped,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.ids import PLATFORM, is_capability, is_client, split_instance_key
from caxton.domain.journal import answers
from caxton.domain.stages import ended_us
from caxton.domain.tracing import (
    SAMPLED,
    deliver_span_id,
    derived_trace_id,
    parse_traceparent,
    process_span_id,
    send_span_id,
    tool_span_id,
    trace_of,
)

SpanKind = Literal["internal", "server", "client", "producer", "consumer"]
SpanStatus = Literal["unset", "ok", "error"]
AttributeValue = str | int | float | bool
Attributes = tuple[tuple[str, AttributeValue], ...]

MESSAGING_SYSTEM = "caxton"
_K = TypeVar("_K")
_V = TypeVar("_V")
_MS = 1_000_000  # nanoseconds


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanEvent:
    """Something that happened at one moment of a span (a trap, a dead letter)."""

    name: str
    time_ns: int
    attributes: Attributes = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Span:
    """One finished span. Ids are lowercase hex; a root has `parent_span_id == ""`."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: SpanKind
    start_ns: int
    end_ns: int
    attributes: Attributes = ()
    status: SpanStatus = "unset"
    status_message: str = ""
    events: tuple[SpanEvent, ...] = ()
    sampled: bool = True
    position: int = 0
    """The log position of the event the span was built from."""

    def attribute(self, key: str) -> AttributeValue | None:
        for name, value in self.attributes:
            if name == key:
                return value
        return None


@dataclass(frozen=True, slots=True)
class _Sent:
    trace_id: str
    flags: str
    at_ns: int
    performative: str
    protocol: str
    span_id: str


class SpanBuilder:
    """Turns recorded events into spans, in log order.

    It remembers what it needs of recent sends (trace, time, performative) to build
    the spans of their deliveries; `memory` bounds how many. A handling whose send is
    forgotten or outside the events given still gets its ids right: the trace comes
    from the `traceparent` the runtime stamped on the handling's events.
    """

    def __init__(
        self, memory: int = 100_000, keep: Callable[[str, str], bool] | None = None
    ) -> None:
        """`keep(trace_id, flags)`, when given, decides which traces get spans (sampling):
        the others cost only the bookkeeping."""
        self._memory = memory
        self._keep = keep
        self._sent: OrderedDict[str, _Sent] = OrderedDict()
        # message id -> the error span (trap or dead letter) a platform failure answers
        self._failed: OrderedDict[str, str] = OrderedDict()
        self._trapped: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._tool_calls: OrderedDict[str, ToolCalled] = OrderedDict()
        # the last handling's span, the parent of what it sent (committed right after it)
        self._last_process: tuple[tuple[str, str], str] = (("", ""), "")

    def spans(self, recorded: Recorded) -> list[Span]:
        event = recorded.event
        at_ns = recorded.at * _MS
        match event:
            case MessageSent():
                return self._sent_spans(event, recorded.position, at_ns)
            case MessageHandled():
                if not self._kept(event.message_id, recorded):
                    return []
                return self._handled_spans(event, recorded, at_ns)
            case AgentTrapped() if event.message_id:
                if not self._kept(event.message_id, recorded):
                    return []
                return self._trapped_spans(event, recorded, at_ns)
            case MessageDeadLettered():
                if not self._kept(event.message_id, recorded):
                    return []
                return self._dead_letter_spans(event, recorded, at_ns)
            case ToolCalled():
                self._remember(self._tool_calls, event.call_id, event)
                return []
            case ToolReturned() | ToolFailed():
                return [self._tool_span(event, recorded, at_ns)]
            case _:
                return []

    # --- tool calls ---------------------------------------------------------

    def _tool_span(self, done: ToolReturned | ToolFailed, recorded: Recorded, at_ns: int) -> Span:
        """`execute_tool {tool}` (OpenTelemetry's GenAI conventions), a child of the
        handling that made the call, or a root for `caxton tools call`."""
        at_ns = done.at_us * 1000 if done.at_us else at_ns
        called = self._tool_calls.pop(done.call_id, None)
        message_id = called.message_id if called is not None else ""
        parent = process_span_id(message_id, done.agent) if message_id and done.agent else ""
        if message_id:
            trace_id, flags = self._trace(message_id, recorded.traceparent)
        else:
            trace_id, flags = derived_trace_id(f"tool:{done.call_id}"), SAMPLED
        attributes: list[tuple[str, AttributeValue]] = [
            ("gen_ai.operation.name", "execute_tool"),
            ("gen_ai.tool.name", done.tool),
            ("gen_ai.tool.call.id", done.call_id),
            ("caxton.tool.server", done.server),
            ("caxton.tool.duration_us", done.duration_us),
            ("messaging.caxton.agent", done.agent),
            ("messaging.message.conversation_id", done.conversation_id),
            ("caxton.log.position", recorded.position),
        ]
        error = ""
        if isinstance(done, ToolFailed):
            attributes.append(("error.type", done.kind))
            error = done.reason
        elif done.truncated:
            attributes.append(("caxton.tool.result_size", done.size))
        return Span(
            trace_id=trace_id,
            span_id=tool_span_id(done.call_id),
            parent_span_id=parent,
            name=f"execute_tool {done.tool}",
            kind="internal",
            start_ns=at_ns - done.duration_us * 1000,
            end_ns=at_ns,
            attributes=_without_empty(attributes),
            status="error" if error else "unset",
            status_message=error,
            sampled=_sampled(flags),
            position=recorded.position,
        )

    # --- sends ------------------------------------------------------------

    def _sent_spans(self, sent: MessageSent, position: int, at_ns: int) -> list[Span]:
        m = sent.message
        context = trace_of(m)
        own = send_span_id(m.id)
        if sent.cause and m.sender == PLATFORM:
            parent = self._failed.get(sent.cause) or send_span_id(sent.cause)
        elif sent.cause and not is_client(m.sender):
            cached, span = self._last_process
            parent = (
                span if cached == (sent.cause, m.sender) else process_span_id(sent.cause, m.sender)
            )
        else:  # from outside or from `init`: the caller's span, if it sent one
            parent = "" if context.span_id == own else context.span_id
        self._remember(
            self._sent,
            m.id,
            _Sent(context.trace_id, context.flags, at_ns, m.performative.value, m.protocol, own),
        )
        if self._keep is not None and not self._keep(context.trace_id, context.flags):
            return []
        attributes = _messaging("send", "send", ",".join(m.receivers), m.id, m.conversation_id)
        attributes += [
            ("messaging.message.body.size", len(m.content.encode("utf-8", "surrogatepass"))),
            ("messaging.caxton.performative", m.performative.value),
            ("messaging.caxton.sender", m.sender),
            ("messaging.caxton.deliveries", len(sent.deliveries)),
        ]
        for key, value in (
            ("protocol", m.protocol),
            ("language", m.language),
            ("ontology", m.ontology),
            ("reply_with", m.reply_with),
            ("in_reply_to", m.in_reply_to),
        ):
            if value:
                attributes.append((f"messaging.caxton.{key}", value))
        if m.reply_by is not None:
            attributes.append(("messaging.caxton.reply_by", m.reply_by))
        attributes.append(("caxton.log.position", position))
        spans = [
            Span(
                trace_id=context.trace_id,
                span_id=own,
                parent_span_id=parent,
                name=f"send {_destination(m.receivers)}",
                kind="producer",
                start_ns=at_ns,
                end_ns=at_ns,
                attributes=tuple(attributes),
                sampled=_sampled(context.flags),
                position=position,
            )
        ]
        for target in sent.deliveries:
            if is_client(target):  # handed over at the commit: nothing waits in between
                spans.append(
                    self._deliver(
                        m.id, target, at_ns, at_ns, position, conversation_id=m.conversation_id
                    )
                )
        return spans

    # --- deliveries and handlings ------------------------------------------

    def _handled_spans(self, handled: MessageHandled, recorded: Recorded, at_ns: int) -> list[Span]:
        start, at_ns = self._handling(handled, at_ns)
        agent = handled.agent
        process = self._process(
            handled.message_id,
            handled.conversation_id,
            agent,
            handled.replica,
            start,
            at_ns,
            recorded,
            extra=(
                ("caxton.wasm.duration_us", handled.duration_us),
                ("caxton.wasm.cpu_us", handled.cpu_us),
                ("caxton.host_calls", len(answers(handled.journal))),
            ),
            error=handled.error,
            error_event=("agent.error", (("error.message", handled.error),)),
        )
        deliver = self._deliver(
            handled.message_id,
            agent,
            None,
            start,
            recorded.position,
            trace=recorded.traceparent,
            conversation_id=handled.conversation_id,
        )
        return [deliver, process]

    def _trapped_spans(self, trapped: AgentTrapped, recorded: Recorded, at_ns: int) -> list[Span]:
        start, at_ns = self._handling(trapped, at_ns)
        agent = trapped.agent
        reason = f"{trapped.kind}: {trapped.reason}"
        process = self._process(
            trapped.message_id,
            trapped.conversation_id,
            agent,
            trapped.replica,
            start,
            at_ns,
            recorded,
            extra=(
                ("caxton.wasm.duration_us", trapped.duration_us),
                ("caxton.wasm.cpu_us", trapped.cpu_us),
                ("caxton.trap.kind", trapped.kind),
            ),
            error=reason,
            error_event=(
                "exception",
                (("exception.type", trapped.kind), ("exception.message", trapped.reason)),
            ),
        )
        self._remember(self._trapped, (trapped.message_id, agent), None)
        self._remember(self._failed, trapped.message_id, process.span_id)
        deliver = self._deliver(
            trapped.message_id,
            agent,
            None,
            start,
            recorded.position,
            trace=recorded.traceparent,
            conversation_id=trapped.conversation_id,
        )
        return [deliver, process]

    def _handling(self, event: MessageHandled | AgentTrapped, at_ns: int) -> tuple[int, int]:
        """When a guest call started and ended: as recorded, or (in an older log) its
        duration back from its commit, not before its message was sent."""
        if event.started_us:
            return event.started_us * 1000, ended_us(event) * 1000
        start = at_ns - event.duration_us * 1000
        sent = self._sent.get(event.message_id)
        if sent is not None:
            start = max(start, sent.at_ns)  # `at` is in milliseconds: keep the order
        return start, at_ns

    def _dead_letter_spans(
        self, dead: MessageDeadLettered, recorded: Recorded, at_ns: int
    ) -> list[Span]:
        agent = _agent_of(dead.receiver)
        if (dead.message_id, agent) in self._trapped:
            return []  # the trap's spans already say it
        span = self._deliver(
            dead.message_id,
            agent,
            None,
            at_ns,
            recorded.position,
            trace=recorded.traceparent,
            error=dead.reason,
            conversation_id=dead.conversation_id,
        )
        self._remember(self._failed, dead.message_id, span.span_id)
        return [span]

    def _deliver(
        self,
        message_id: str,
        target: str,
        start_ns: int | None,
        end_ns: int,
        position: int,
        *,
        trace: str = "",
        error: str = "",
        conversation_id: str = "",
    ) -> Span:
        sent = self._sent.get(message_id)
        agent = _agent_of(target)
        if start_ns is None:
            start_ns = min(sent.at_ns, end_ns) if sent is not None else end_ns
        trace_id, flags = self._trace(message_id, trace)
        attributes = _messaging("receive", "deliver", target, message_id, conversation_id)
        if sent is not None:
            attributes.append(("messaging.caxton.performative", sent.performative))
        attributes.append(("caxton.mailbox.wait_us", (end_ns - start_ns) // 1000))
        attributes.append(("caxton.log.position", position))
        return Span(
            trace_id=trace_id,
            span_id=deliver_span_id(message_id, agent),
            parent_span_id=sent.span_id if sent is not None else send_span_id(message_id),
            name=f"deliver {_destination((target,))}",
            kind="internal",
            start_ns=start_ns,
            end_ns=end_ns,
            attributes=tuple(attributes),
            status="error" if error else "unset",
            status_message=f"dead letter: {error}" if error else "",
            events=(
                (SpanEvent(name="dead-letter", time_ns=end_ns, attributes=(("reason", error),)),)
                if error
                else ()
            ),
            sampled=_sampled(flags),
            position=position,
        )

    def _process(
        self,
        message_id: str,
        conversation_id: str,
        agent: str,
        replica: int,
        start_ns: int,
        end_ns: int,
        recorded: Recorded,
        *,
        extra: Attributes,
        error: str,
        error_event: tuple[str, Attributes],
    ) -> Span:
        own = process_span_id(message_id, agent)
        self._last_process = ((message_id, agent), own)
        sent = self._sent.get(message_id)
        trace_id, flags = self._trace(message_id, recorded.traceparent)
        attributes = _messaging("process", "process", agent, message_id, conversation_id)
        attributes += [("messaging.caxton.agent", agent), ("messaging.caxton.replica", replica)]
        if sent is not None:
            attributes.append(("messaging.caxton.performative", sent.performative))
            if sent.protocol:
                attributes.append(("messaging.caxton.protocol", sent.protocol))
        attributes.extend(extra)
        attributes.append(("caxton.log.position", recorded.position))
        name, event_attributes = error_event
        return Span(
            trace_id=trace_id,
            span_id=own,
            parent_span_id=sent.span_id if sent is not None else send_span_id(message_id),
            name=f"process {agent}",
            kind="consumer",
            start_ns=start_ns,
            end_ns=end_ns,
            attributes=tuple(attributes),
            status="error" if error else "unset",
            status_message=error,
            events=(
                (SpanEvent(name=name, time_ns=end_ns, attributes=event_attributes),)
                if error
                else ()
            ),
            sampled=_sampled(flags),
            position=recorded.position,
        )

    def _kept(self, message_id: str, recorded: Recorded) -> bool:
        return self._keep is None or self._keep(*self._trace(message_id, recorded.traceparent))

    def _trace(self, message_id: str, traceparent: str) -> tuple[str, str]:
        """The trace of a message: from its send, else from the stamped context."""
        sent = self._sent.get(message_id)
        if sent is not None:
            return sent.trace_id, sent.flags
        context = parse_traceparent(traceparent)
        if context is not None:
            return context.trace_id, context.flags
        return derived_trace_id(message_id), SAMPLED

    def _remember(self, memory: OrderedDict[_K, _V], key: _K, value: _V) -> None:
        memory[key] = value
        if len(memory) > self._memory:
            memory.popitem(last=False)


def spans_of(records: Iterable[Recorded], *, memory: int = 100_000) -> list[Span]:
    """Every span the events make, in log order."""
    builder = SpanBuilder(memory)
    return [span for recorded in records for span in builder.spans(recorded)]


def _messaging(
    operation_type: str, operation: str, destination: str, message_id: str, conversation_id: str
) -> list[tuple[str, AttributeValue]]:
    attributes: list[tuple[str, AttributeValue]] = [
        ("messaging.system", MESSAGING_SYSTEM),
        ("messaging.operation.type", operation_type),
        ("messaging.operation.name", operation),
        ("messaging.destination.name", destination),
        ("messaging.message.id", message_id),
    ]
    if conversation_id:
        attributes.append(("messaging.message.conversation_id", conversation_id))
    return attributes


def _without_empty(attributes: Iterable[tuple[str, AttributeValue]]) -> Attributes:
    return tuple((k, v) for k, v in attributes if v != "")


def _destination(receivers: tuple[str, ...]) -> str:
    """A low-cardinality name for span names: agents and capabilities as they are,
    every client as `client` (each caller has its own random address)."""
    if len(receivers) == 1:
        return "client" if is_client(receivers[0]) else receivers[0]
    return ",".join("client" if is_client(r) else r for r in receivers)


def _agent_of(target: str) -> str:
    if "#" in target and not is_capability(target):
        return split_instance_key(target)[0]
    return target


def _sampled(flags: str) -> bool:
    return flags[-1:] in _ODD_HEX


_ODD_HEX = frozenset("13579bdf")
