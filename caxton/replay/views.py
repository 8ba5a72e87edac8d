"""What the replay screens show, as pure functions of a cursor: rows, lanes, panes, text.

The TUI and `caxton replay --print` render these; they hold no widgets and no I/O,
so every line a user sees can be tested without a terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from caxton.domain.acl import AclMessage
from caxton.domain.agents import AgentState
from caxton.domain.conversations import ConversationState, targets
from caxton.domain.events import (
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
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
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import replace
from caxton.domain.ids import PLATFORM
from caxton.domain.protocols import agent_of, phase
from caxton.domain.stages import happened_ms, queue_wait_us
from caxton.replay.calls import excerpt, journal_lines, result_body, took, tool_lane
from caxton.replay.cursor import Cursor, Timeline
from caxton.replay.nodes import on_shard, takeover_arrow, takeover_reason, takeover_text
from caxton.replay.recording import participants


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One line of the timeline."""

    step: int
    time: str
    actor: str
    arrow: str
    performative: str
    status: str
    detail: str = ""
    node: str = ""
    """The node of a cluster that made the step ("" outside a cluster, or when the log
    does not say: what a client sent)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentLine:
    """A participant as it stood at the current step."""

    name: str
    status: str
    instances: str
    restarts: int
    last_error: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StateView:
    protocol: str
    phase: str
    outcome: str
    messages: int
    violations: tuple[str, ...]
    failure: str
    agents: tuple[AgentLine, ...]


def clock(at: int) -> str:
    """`03:29:49.097`, UTC."""
    return datetime.fromtimestamp(at / 1000, tz=UTC).strftime("%H:%M:%S.") + f"{at % 1000:03d}"


def row(step: int, recorded: Recorded, timeline: Timeline) -> Row:
    made = _row(step, recorded, timeline)
    node = timeline.node(step)
    return replace(made, node=node) if node else made


def _row(step: int, recorded: Recorded, timeline: Timeline) -> Row:
    event = recorded.event
    time = clock(happened_ms(recorded))
    match event:
        case MessageSent(message=m):
            to = ", ".join(targets(event)) or ", ".join(m.receivers)
            return Row(
                step=step,
                time=time,
                actor=m.sender,
                arrow=f"{m.sender} → {to}",
                performative=m.performative.value,
                status="sent",
            )
        case MessageHandled(agent=a, replica=r, error=e):
            return Row(
                step=step,
                time=time,
                actor=a,
                arrow=f"{a}#{r}",
                performative=_performative(timeline, event.message_id),
                status="failed" if e else "handled",
                detail=_joined(e, stages_text(step, event, timeline))
                if event.started_us
                else e or f"{event.duration_us} µs",
            )
        case MessageDeadLettered(receiver=receiver, reason=reason):
            return Row(
                step=step,
                time=time,
                actor=agent_of(receiver),
                arrow=f"✗ {receiver}",
                performative=_performative(timeline, event.message_id),
                status="dead-letter",
                detail=reason,
            )
        case MessageQuarantined(agent=a, replica=r, reason=reason):
            return Row(
                step=step,
                time=time,
                actor=a,
                arrow=f"⊘ {a}#{r}",
                performative=_performative(timeline, event.message_id),
                status="quarantined",
                detail=f"skipped by {a}#{r}'s memory rebuilds: its re-execution trapped ({reason})",
            )
        case AgentTrapped(agent=a, replica=r, kind=kind, reason=reason):
            return Row(
                step=step,
                time=time,
                actor=a,
                arrow=f"{a}#{r}",
                performative=_performative(timeline, event.message_id) if event.message_id else "",
                status="trapped",
                detail=_joined(f"{kind}: {reason}", stages_text(step, event, timeline)),
            )
        case ShardClaimed(shard=shard):
            return Row(
                step=step,
                time=time,
                actor="",
                arrow=f"shard {shard} {takeover_arrow(event)}",
                performative="",
                status="takeover",
                detail=takeover_reason(event),
            )
        case ToolCalled() | ToolReturned() | ToolFailed():
            return _tool_row(step, time, event)
        case BreakerOpened() | BreakerHalfOpened() | BreakerClosed():
            return Row(
                step=step,
                time=time,
                actor=event.agent,
                arrow=f"{tool_lane(event.server)}: {_breaker(event)}",
                performative="",
                status="breaker",
                detail=_breaker_reason(event),
            )
        case _:
            return Row(
                step=step,
                time=time,
                actor=getattr(event, "agent", ""),
                arrow=getattr(event, "agent", ""),
                performative="",
                status=_lifecycle(recorded),
                detail=_lifecycle_detail(recorded),
            )


def _tool_row(step: int, time: str, event: ToolCalled | ToolReturned | ToolFailed) -> Row:
    """`bidder → ⚙ time.get_current_time {"timezone": "UTC"}`, then its answer back:
    `⚙ time.get_current_time → bidder in 3.2ms: {"datetime": …}` or `✗` and why."""
    agent = event.agent or PLATFORM
    name = f"{tool_lane(event.server)}.{event.tool}"
    match event:
        case ToolCalled(arguments=arguments):
            arrow, status, note = f"{agent} → {name} {excerpt(arguments, 40)}", "tool call", ""
        case ToolReturned(result=result, duration_us=us):
            arrow = f"{name} → {agent} in {took(us)}: {excerpt(result_body(result), 40)}"
            status = "tool result"
            note = f"{took(us)}" + (
                f", truncated from {event.size} bytes" if event.truncated else ""
            )
        case ToolFailed(reason=reason, duration_us=us):
            arrow = f"{name} ✗ {agent} in {took(us)}: {excerpt(reason, 60)}"
            status, note = "tool failed", reason
    return Row(
        step=step,
        time=time,
        actor=event.agent,
        arrow=arrow,
        performative="",
        status=status,
        detail=note,
    )


def _breaker(event: BreakerOpened | BreakerHalfOpened | BreakerClosed) -> str:
    state = {BreakerOpened: "open", BreakerHalfOpened: "half-open", BreakerClosed: "closed"}
    whose = f" (calls by {event.agent})" if event.agent else ""
    return f"breaker {state[type(event)]}{whose}"


def _breaker_reason(event: BreakerOpened | BreakerHalfOpened | BreakerClosed) -> str:
    if isinstance(event, BreakerOpened):
        return f"after {event.failures} failures ({event.reason}), for {event.reset_ms} ms"
    if isinstance(event, BreakerHalfOpened):
        return "one trial call may go through"
    return "a trial call succeeded: calls go through again"


def stages_text(step: int, event: MessageHandled | AgentTrapped, timeline: Timeline) -> str:
    """`waited 10002ms, took 5409ms, tools 5005ms`: the handling at `step`'s queue wait
    (when its send is in the recording), duration and tool waits; "" when the log did
    not record when it started."""
    if not event.started_us:
        return ""
    parts = []
    sent = timeline.send_step(event.message_id)
    sent_event = timeline.event(sent) if sent is not None else None
    if sent_event is not None and event.dequeued_us:
        parts.append(f"waited {took(queue_wait_us(sent_event.at, event.dequeued_us))}")
    parts.append(f"took {took(event.duration_us)}")
    tools = _tool_wait_us(step, event.message_id, timeline)
    if tools:
        parts.append(f"tools {took(tools)}")
    return ", ".join(parts)


def _tool_wait_us(step: int, message_id: str, timeline: Timeline) -> int:
    """The tool waits of the handling at `step`: its tool events are the steps just before
    it, committed with it."""
    waited = 0
    for recorded in reversed(timeline.recording.events[: step - 1]):
        event = recorded.event
        if isinstance(event, ToolReturned | ToolFailed):
            waited += event.duration_us
        elif isinstance(event, ToolCalled):
            if event.message_id != message_id:
                break
        elif not isinstance(event, BreakerOpened | BreakerHalfOpened | BreakerClosed):
            break
    return waited


def _joined(first: str, second: str) -> str:
    return f"{first}; {second}" if first and second else first or second


def rows(timeline: Timeline, start: int = 1) -> list[Row]:
    """The timeline's rows from step `start` on."""
    events = timeline.recording.events
    return [row(i, events[i - 1], timeline) for i in range(start, len(events) + 1)]


def message_at(cursor: Cursor) -> AclMessage | None:
    """The message the current step is about: sent, handled, dead-lettered or trapping."""
    recorded = cursor.recorded
    if recorded is None:
        return None
    event = recorded.event
    match event:
        case MessageSent(message=m):
            return m
        case MessageHandled(message_id=mid) | MessageDeadLettered(message_id=mid):
            return _message(cursor.timeline, mid)
        case AgentTrapped(message_id=mid) if mid:
            return _message(cursor.timeline, mid)
        case _:
            return None


def detail(cursor: Cursor) -> str:
    """The selected message in full: envelope, then content pretty-printed."""
    message = message_at(cursor)
    recorded = cursor.recorded
    if recorded is None:
        return "Before the first event."
    node = cursor.timeline.node(cursor.step)
    event = recorded.event
    if isinstance(event, ShardClaimed):
        return _takeover_detail(cursor, event)
    if isinstance(event, ToolCalled | ToolReturned | ToolFailed):
        return _tool_detail(cursor, event)
    if message is None:
        text = f"{type(event).__name__}\n\n{_fields(event)}"
        if isinstance(event, AgentStarted) and event.journal:
            text += "\n\n" + _journal_text(event.journal, "while starting (init)")
        return text
    lines = [
        f"{'performative':<16}{message.performative.value}",
        f"{'id':<16}{message.id}",
        f"{'sender':<16}{message.sender}",
        f"{'receivers':<16}{', '.join(message.receivers)}",
    ]
    for name in ("protocol", "conversation_id", "reply_with", "in_reply_to", "ontology"):
        value = getattr(message, name)
        if value:
            lines.append(f"{name.replace('_', '-'):<16}{value}")
    if message.reply_by is not None:
        lines.append(f"{'reply-by':<16}{clock(message.reply_by)}")
    if message.language != "json":
        lines.append(f"{'language':<16}{message.language}")
    if isinstance(recorded.event, MessageSent) and recorded.event.deliveries:
        lines.append(f"{'delivered to':<16}{', '.join(recorded.event.deliveries)}")
    if node and isinstance(recorded.event, MessageSent):
        lines.append(f"{'node':<16}{node}")
    lines += ["", pretty(message.content, message.language)]
    if not isinstance(recorded.event, MessageSent):
        r = row(cursor.step, recorded, cursor.timeline)
        summary = f"{r.status} by {r.arrow}" + (f" on {node}" if node else "")
        summary += f": {r.detail}" if r.detail else ""
        if isinstance(recorded.event, MessageDeadLettered):
            summary = f"dead letter to {recorded.event.receiver}: {recorded.event.reason}"
        lines = [summary, "", *lines]
    if isinstance(event, MessageHandled) and event.journal:
        lines += ["", _journal_text(event.journal, "while handling it")]
    return "\n".join(lines)


def _journal_text(journal: tuple[HostCall, ...], when: str) -> str:
    """The host's answers (`now`, `random`, tool calls) and the agent's log lines of one
    call, in the order the agent got them."""
    lines = [f"  {line}" for line in journal_lines(journal)]
    return "\n".join([f"host answers and log lines {when}", *lines])


def _tool_detail(cursor: Cursor, event: ToolCalled | ToolReturned | ToolFailed) -> str:
    """One tool call whole, from either of its steps: who called what, with which
    arguments, and what came back (or why nothing did), and how long it took."""
    timeline = cursor.timeline
    steps = timeline.call_steps(event.call_id)
    found = [e for e in (timeline.event(i) for i in steps) if e is not None]
    called = next((r.event for r in found if isinstance(r.event, ToolCalled)), None)
    end = next((r.event for r in found if isinstance(r.event, ToolReturned | ToolFailed)), None)
    name = f"{event.server}.{event.tool}"
    agent = event.agent or PLATFORM
    match end:
        case ToolReturned(duration_us=us):
            outcome = f"returned in {took(us)}"
            if end.truncated:
                outcome += f" (truncated from {end.size} bytes)"
        case ToolFailed(duration_us=us, kind=kind):
            outcome = f"failed ({kind}) in {took(us)}"
        case _:
            outcome = "no answer recorded in this conversation"
    where = " → ".join(f"step {i}" for i in steps)
    lines = [f"tool call {name} by {agent}: {outcome}", ""]
    lines.append(f"{'tool':<16}{name}  ({tool_lane(event.server)})")
    lines.append(f"{'call id':<16}{event.call_id}")
    lines.append(f"{'steps':<16}{where}")
    if called is not None and called.message_id:
        message = _message(timeline, called.message_id)
        handling = f" ({message.performative.value} from {message.sender})" if message else ""
        lines.append(f"{'while handling':<16}{called.message_id}{handling}")
    lines += ["", "arguments"]
    lines.append(pretty(called.arguments) if called is not None else "(not in this recording)")
    if isinstance(end, ToolReturned):
        lines += ["", "result", pretty(result_body(end.result))]
    elif isinstance(end, ToolFailed):
        lines += ["", "failure", f"{'kind':<16}{end.kind}", f"{'reason':<16}{end.reason}"]
    return "\n".join(lines)


def _takeover_detail(cursor: Cursor, claim: ShardClaimed) -> str:
    """A takeover: which shard, from which node to which, why, and the agents it moved."""
    moved = on_shard(claim.shard, participants(cursor.timeline.recording.events))
    lines = [f"takeover: {takeover_text(claim)}", ""]
    if moved:
        lines.append(f"{'agents moved':<16}{', '.join(moved)}")
    lines += [
        f"{'from':<16}{claim.previous or '(no node)'}",
        f"{'to':<16}{claim.node}",
        f"{'reason':<16}{claim.reason or '—'}",
        f"{'epoch':<16}{claim.epoch}",
    ]
    return "\n".join(lines)


def pretty(content: str, language: str = "json") -> str:
    """JSON content indented; anything else as it is."""
    if language == "json" and content:
        try:
            return json.dumps(json.loads(content), indent=2, ensure_ascii=False, sort_keys=True)
        except (ValueError, RecursionError):  # deeper than this stack reads: shown as it is
            pass
    return content


def one_line(content: str, language: str = "json") -> tuple[str, ...]:
    """JSON content on one line as a person types it (`{"price": 15}`) and compact
    (`{"price":15}`), keys in the order shown; nothing for anything else."""
    if language != "json" or not content:
        return ()
    try:
        value = json.loads(content)
    except (ValueError, RecursionError):
        return ()
    return (
        json.dumps(value, ensure_ascii=False, sort_keys=True),
        json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")),
    )


def shown(timeline: Timeline, step: int) -> str:
    """The text a step shows (its timeline row and its message pane), with its content
    also on one line, spaced and compact, and as recorded: what `/` searches."""
    recorded = timeline.event(step)
    if recorded is None:
        return ""
    at = Cursor(timeline=timeline, step=step)
    r = row(step, recorded, timeline)
    lines = [format_row(r), r.node, detail(at)]
    message = message_at(at)
    if message is not None:
        lines += [*one_line(message.content, message.language), message.content]
    return "\n".join(lines)


def search(cursor: Cursor, text: str, *, backwards: bool = False) -> Cursor | None:
    """The next (or previous) step that shows `text`, ignoring case, wrapping around;
    none when no step does. `"price": 15` and `"price":15` both find `{"price":15}`."""
    needle = text.casefold()
    timeline = cursor.timeline
    return cursor.find_step(
        lambda step: needle in shown(timeline, step).casefold(), backwards=backwards
    )


def wrapped(text: str, width: int) -> tuple[str, ...]:
    """`text` in lines of at most `width`, broken after a list's commas (`manager →
    bidder-a, bidder-b,` then `bidder-c`), else at a space (a tool step's arguments):
    nothing is cut off, a name longer than a line is split."""
    width = max(width, 1)
    parts = text.split(", ")
    pieces = [part + "," for part in parts[:-1]] + parts[-1:]
    lines: list[str] = []
    line = ""
    for piece in pieces:
        joined = f"{line} {piece}" if line else piece
        if line and len(joined) > width:
            lines.append(line)
            joined = piece
        while len(joined) > width:
            at = joined.rfind(" ", 1, width + 1)
            at = at if at > 0 else width
            lines.append(joined[:at].rstrip())
            joined = joined[at:].lstrip()
        line = joined
    return (*lines, line) if line or not lines else tuple(lines)


def state_view(cursor: Cursor) -> StateView:
    """The conversation and its participants at the current step."""
    world = cursor.state
    conversation_id = cursor.timeline.recording.conversation_id
    conv = world.conversations.get(conversation_id) or ConversationState(id=conversation_id)
    names = participants(cursor.timeline.recording.events[: cursor.step])
    agents = tuple(_agent_line(name, world.agents.get(name)) for name in names)
    return StateView(
        protocol=conv.protocol or "(none)",
        phase=phase(conv.protocol_state) if conv.protocol_state else "—",
        outcome=conv.outcome,
        messages=conv.message_count,
        violations=tuple(
            f"step {_step_of(cursor, v.position)}: {v.reason}" for v in conv.violations
        ),
        failure=conv.failure,
        agents=agents,
    )


def lanes(timeline: Timeline) -> list[str]:
    """One lane per participant, in order of appearance, clients included; then one per
    MCP server called (`⚙ time`)."""
    seen: dict[str, None] = {}
    servers: dict[str, None] = {}
    for recorded in timeline.recording.events:
        event = recorded.event
        if isinstance(event, MessageSent):
            seen.setdefault(event.message.sender, None)
            for name in targets(event):
                seen.setdefault(name, None)
        elif isinstance(event, ToolCalled):
            servers.setdefault(tool_lane(event.server), None)
    for name in participants(timeline.recording.events):
        seen.setdefault(name, None)
    return [*seen, *servers]


def lane_width(names: list[str], pane: int) -> int:
    """A lane's width in a pane `pane` columns wide: the lanes share the pane (9 to 24
    columns each), and a lane is never too narrow for its name (the diagram then
    scrolls sideways rather than cut a name short)."""
    share = max(9, min(24, (pane - 1) // max(len(names), 1)))
    return max(share, *(len(name) + 2 for name in names)) if names else share


def sequence(cursor: Cursor, width: int = 24) -> list[tuple[int, str]]:
    """The sequence diagram as text: a header of lanes, then one line per message sent
    (`(step, line)`, step 0 for the header), arrows from sender to each receiver; a tool
    call an arrow from its agent to the server's lane, its answer one back."""
    timeline = cursor.timeline
    names = lanes(timeline)
    if not names:
        return [(0, "(no messages)")]
    width = max(width, 8)
    column = {name: i * width + width // 2 for i, name in enumerate(names)}
    total = width * len(names)
    header = "".join(_centre(name, width) for name in names)
    lines: list[tuple[int, str]] = [(0, header)]
    for step, recorded in enumerate(timeline.recording.events, start=1):
        event = recorded.event
        if isinstance(event, MessageSent):
            lines.append((step, _arrow(event, column, total)))
        elif isinstance(event, MessageDeadLettered | AgentTrapped):
            who = (
                agent_of(event.receiver) if isinstance(event, MessageDeadLettered) else event.agent
            )
            if who in column:
                mark = "x dead letter" if isinstance(event, MessageDeadLettered) else "x trap"
                lines.append((step, _mark(column, total, who, mark)))
        elif isinstance(event, ShardClaimed):
            for who in on_shard(event.shard, column):
                lines.append((step, _mark(column, total, who, f"⇄ {takeover_arrow(event)}")))
        elif isinstance(event, ToolCalled | ToolReturned | ToolFailed):
            agent, lane = column.get(event.agent), column.get(tool_lane(event.server))
            if agent is not None and lane is not None:
                lines.append((step, _tool_arrow(event, agent, lane, column, total)))
        elif isinstance(event, BreakerOpened | BreakerHalfOpened | BreakerClosed):
            lane_name = tool_lane(event.server)
            if lane_name in column:
                lines.append((step, _mark(column, total, lane_name, f"⚡ {_breaker(event)}")))
    return lines


def phase_line(cursor: Cursor) -> str:
    """`fipa-contract-net: proposals in` at the current step."""
    view = state_view(cursor)
    text = f"{view.protocol}: {view.phase}" if view.protocol != "(none)" else "no protocol"
    if view.violations:
        text += f"  ⚠ {len(view.violations)} violation(s)"
    return text


def story(cursor: Cursor) -> str:
    """`caxton replay --print`: the timeline, the state at the end, then the violations."""
    timeline = cursor.timeline
    end = cursor.end()
    recording = timeline.recording
    out = [f"Conversation {recording.conversation_id} — {len(timeline)} steps", ""]
    shown = rows(timeline)
    width = max((len(r.node) for r in shown), default=0) if timeline.clustered else 0
    out += [format_row(r, node_width=width) for r in shown]
    view = state_view(end)
    out += [
        "",
        "State at the end",
        f"  protocol   {view.protocol}",
        f"  phase      {view.phase}",
        f"  outcome    {view.outcome}",
        f"  messages   {view.messages}",
    ]
    if view.failure:
        out.append(f"  failure    {view.failure}")
    out += ["", "Agents"]
    out += [
        f"  {a.name:<16} {a.status:<10} {a.instances:<14} restarts={a.restarts}"
        + (f"  last error: {a.last_error}" if a.last_error else "")
        for a in view.agents
    ]
    out += ["", "Violations"]
    out += [f"  {v}" for v in view.violations] or ["  none"]
    return "\n".join(out)


def format_row(r: Row, *, node_width: int = 0) -> str:
    """`   3  [16:00:00.002]  handled     cfp              bidder-b#0  (7 µs)`; with
    `node_width`, the node of the step (`-` when the log does not say) after the time."""
    node = f"{r.node or '-':<{node_width}}  " if node_width else ""
    text = f"{r.step:>4}  [{r.time}]  {node}{r.status:<11} {r.performative:<16} {r.arrow}"
    return f"{text}  ({r.detail})" if r.detail else text


def mermaid(recording: Timeline | Cursor) -> str:
    """A `sequenceDiagram` of the conversation, as GitHub renders it."""
    timeline = recording.timeline if isinstance(recording, Cursor) else recording
    names = lanes(timeline)
    alias = {name: f"p{i}" for i, name in enumerate(names)}
    out = ["sequenceDiagram"]
    out += [f"    participant {alias[n]} as {_mermaid_text(n)}" for n in names]
    for recorded in timeline.recording.events:
        event = recorded.event
        if isinstance(event, MessageSent):
            m = event.message
            for to in targets(event) or m.receivers:
                if to in alias:
                    label = m.performative.value + (f" {_summary(m.content)}" if m.content else "")
                    out.append(f"    {alias[m.sender]}->>{alias[to]}: {_mermaid_text(label)}")
        elif isinstance(event, MessageDeadLettered) and agent_of(event.receiver) in alias:
            who = alias[agent_of(event.receiver)]
            out.append(f"    Note over {who}: dead letter: {_mermaid_text(event.reason)}")
        elif isinstance(event, AgentTrapped) and event.agent in alias:
            why = f"trapped ({event.kind}): {event.reason}"
            out.append(f"    Note over {alias[event.agent]}: {_mermaid_text(why)}")
        elif isinstance(event, ShardClaimed):
            for who in on_shard(event.shard, alias):
                text = f"takeover: {takeover_text(event)}"
                out.append(f"    Note over {alias[who]}: {_mermaid_text(text)}")
        elif isinstance(event, ToolCalled | ToolReturned | ToolFailed):
            agent, lane = alias.get(event.agent), alias.get(tool_lane(event.server))
            if agent is not None and lane is not None:
                out.append(_mermaid_tool(event, agent, lane))
    state = timeline.state(len(timeline)).conversations.get(timeline.recording.conversation_id)
    if state is not None and state.violations and names:
        for v in state.violations:
            out.append(f"    Note over {alias[names[0]]}: violation: {_mermaid_text(v.reason)}")
    return "\n".join(out) + "\n"


# --- helpers ----------------------------------------------------------------


def _message(timeline: Timeline, message_id: str) -> AclMessage | None:
    step = timeline.send_step(message_id)
    recorded = timeline.event(step) if step is not None else None
    return recorded.event.message if recorded and isinstance(recorded.event, MessageSent) else None


def _performative(timeline: Timeline, message_id: str) -> str:
    message = _message(timeline, message_id)
    return message.performative.value if message else "?"


def _step_of(cursor: Cursor, position: int) -> int:
    for i, recorded in enumerate(cursor.timeline.recording.events, start=1):
        if recorded.position == position:
            return i
    return 0


def _agent_line(name: str, agent: AgentState | None) -> AgentLine:
    if agent is None:
        return AgentLine(name=name, status="—", instances="", restarts=0, last_error="")
    lifecycles = [i.lifecycle for i in agent.instances]
    up = sum(1 for state in lifecycles if state == "running")
    others = sorted({state for state in lifecycles if state != "running"})
    errors = [i.last_error or i.failure for i in agent.instances if i.last_error or i.failure]
    return AgentLine(
        name=name,
        status=agent.status,
        instances=f"{up}/{len(lifecycles)} running" + (f" ({', '.join(others)})" if others else ""),
        restarts=sum(len(i.restarts) for i in agent.instances),
        last_error=errors[-1] if errors else "",
    )


def _lifecycle(recorded: Recorded) -> str:
    return {
        AgentDeployed: "deployed",
        AgentStarted: "started",
        AgentRestarting: "restarting",
        AgentFailed: "failed",
        AgentStopped: "stopped",
        AgentRemoved: "removed",
        AgentTrapped: "trapped",
        MessageHandled: "handled",
        MessageDeadLettered: "dead-letter",
    }.get(type(recorded.event), type(recorded.event).__name__)


def _lifecycle_detail(recorded: Recorded) -> str:
    event = recorded.event
    match event:
        case AgentStarted(replica=r, incarnation=n):
            return f"replica {r}, incarnation {n}"
        case AgentRestarting(replica=r, attempt=a, delay_ms=d):
            return f"replica {r}, attempt {a}, in {d} ms"
        case AgentFailed(replica=r, reason=why):
            return f"replica {r}: {why}"
        case AgentDeployed(replicas=k):
            return f"{k} replica(s)"
        case _:
            return ""


def _fields(event: object) -> str:
    """An event's fields, one per line as the message pane shows an envelope."""
    slots = getattr(type(event), "__slots__", ())
    lines = []
    for name in slots:
        value = getattr(event, name)
        if name == "journal" or value in ("", (), None):
            continue
        if isinstance(value, tuple):
            value = ", ".join(map(str, value))
        elif hasattr(type(value), "__dataclass_fields__"):  # limits, a restart policy
            value = ", ".join(f"{f}={getattr(value, f)}" for f in type(value).__dataclass_fields__)
        lines.append(f"{name.replace('_', ' '):<16}{value}")
    return "\n".join(lines)


def _centre(text: str, width: int) -> str:
    text = text if len(text) < width - 1 else text[: width - 2] + "…"
    return text.center(width)


def _arrow(event: MessageSent, column: dict[str, int], total: int) -> str:
    m = event.message
    start = column.get(m.sender)
    ends = [column[t] for t in (targets(event) or m.receivers) if t in column]
    return _span(column, total, start, ends, f" {m.performative.value} ")


def _tool_arrow(
    event: ToolCalled | ToolReturned | ToolFailed,
    agent: int,
    lane: int,
    column: dict[str, int],
    total: int,
) -> str:
    """`get_current_time` from the agent to the server's lane; `3.2ms` (or `✗ timeout`)
    back."""
    room = max(abs(lane - agent) - 5, 4)  # the label stays between the lanes
    match event:
        case ToolCalled(tool=tool):
            return _span(column, total, agent, [lane], f" {_cut(tool, room)} ")
        case ToolReturned(duration_us=us):
            return _span(column, total, lane, [agent], f" {took(us)} ")
        case ToolFailed(kind=kind):
            return _span(column, total, lane, [agent], f" {_cut('✗ ' + kind, room)} ")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _span(
    column: dict[str, int], total: int, start: int | None, ends: list[int], label: str
) -> str:
    """Arrows from lane position `start` to each of `ends`, labelled."""
    line = [" "] * total
    for x in column.values():
        line[x] = "│"
    if start is None or not ends:
        return "".join(line)
    for end in ends:
        low, high = sorted((start, end))
        for x in range(low + 1, high):
            if line[x] in (" ", "│"):
                line[x] = "─"
        line[end] = ">" if end > start else "<"
    line[start] = "┼"
    low, high = min(start, *ends), max(start, *ends)
    at = low + 2 if high - low > len(label) + 2 else min(high + 2, max(total - len(label), 0))
    for i, ch in enumerate(label):
        if at + i < total:
            line[at + i] = ch
    return "".join(line).rstrip()


def _mark(column: dict[str, int], total: int, who: str, text: str) -> str:
    line = [" "] * total
    for x in column.values():
        line[x] = "│"
    at = column[who]
    line += [" "] * (at + len(text) - total)  # past the last lane rather than cut (it scrolls)
    line[at : at + len(text)] = text
    return "".join(line).rstrip()


def _mermaid_tool(event: ToolCalled | ToolReturned | ToolFailed, agent: str, lane: str) -> str:
    match event:
        case ToolCalled(tool=tool, arguments=arguments):
            return f"    {agent}->>{lane}: {_mermaid_text(f'{tool} {excerpt(arguments, 40)}')}"
        case ToolReturned(duration_us=us, result=result):
            text = f"{took(us)} {excerpt(result_body(result), 40)}"
            return f"    {lane}-->>{agent}: {_mermaid_text(text)}"
        case ToolFailed(duration_us=us, reason=reason):
            text = f"{took(us)} {excerpt(reason, 60)}"
            return f"    {lane}--x{agent}: {_mermaid_text(text)}"


def _summary(content: str, limit: int = 40) -> str:
    flat = " ".join(content.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _mermaid_text(text: str) -> str:
    """Mermaid labels end at a newline and treat `;` and `#` specially."""
    return text.replace("\n", " ").replace(";", ",").replace("#", "#35;")


__all__ = [
    "AgentLine",
    "Row",
    "StateView",
    "clock",
    "detail",
    "format_row",
    "lane_width",
    "lanes",
    "mermaid",
    "message_at",
    "one_line",
    "phase_line",
    "pretty",
    "row",
    "rows",
    "search",
    "sequence",
    "shown",
    "state_view",
    "story",
    "wrapped",
]
