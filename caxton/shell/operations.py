"""What the live-operations API answers, as the client hands it out (`caxton top`, `debug`)."""

from __future__ import annotations

from dataclasses import dataclass

from caxton.shell.api.generated.caxton import v1


@dataclass(frozen=True, slots=True)
class Setting:
    name: str
    value: str
    source: str


@dataclass(frozen=True, slots=True)
class AgentFigures:
    name: str
    running: int
    replicas: int
    state: str
    messages_per_second: float
    p99_handling_ms: float
    mailbox_depth: int
    mailbox_size: int
    memory_limit_bytes: int
    cpu_ms_per_second: float
    restarts: int
    traps: int
    handled: int
    tool_calls_per_second: float
    tool_p99_ms: float
    node: str = ""
    """The node running it ("" while none holds its shard)."""
    p99_queue_wait_ms: float = 0.0
    """How long recent messages waited in its mailboxes (p99), before their handling."""


@dataclass(frozen=True, slots=True)
class ConversationFigures:
    id: str
    protocol: str
    state: str
    messages: int
    participants: tuple[str, ...]
    reply_by_ms: int
    last_at_ms: int
    detail: str


@dataclass(frozen=True, slots=True)
class TrapInfo:
    at_ms: int
    replica: int
    kind: str
    reason: str
    message_id: str
    conversation_id: str


@dataclass(frozen=True, slots=True)
class RestartInfo:
    at_ms: int
    replica: int
    attempt: int
    delay_ms: int


@dataclass(frozen=True, slots=True)
class TopSnapshot:
    at_ms: int
    position: int
    agents: tuple[AgentFigures, ...]
    conversations: tuple[ConversationFigures, ...]


@dataclass(frozen=True, slots=True)
class AgentDebug:
    agent: AgentFigures
    traps: tuple[TrapInfo, ...]
    restarts: tuple[RestartInfo, ...]
    conversations: tuple[ConversationFigures, ...]
    settings: tuple[Setting, ...]


def settings_of(items: list[v1.Setting]) -> tuple[Setting, ...]:
    return tuple(Setting(s.name, s.value, s.source) for s in items)


def figures_of(row: v1.AgentRow) -> AgentFigures:
    return AgentFigures(
        name=row.name,
        running=row.running,
        replicas=row.replicas,
        state=row.state,
        messages_per_second=row.messages_per_second,
        p99_handling_ms=row.p99_handling_ms,
        mailbox_depth=row.mailbox_depth,
        mailbox_size=row.mailbox_size,
        memory_limit_bytes=row.memory_limit_bytes,
        cpu_ms_per_second=row.cpu_ms_per_second,
        restarts=row.restarts,
        traps=row.traps,
        handled=row.handled,
        tool_calls_per_second=row.tool_calls_per_second,
        tool_p99_ms=row.tool_p99_ms,
        node=row.node,
        p99_queue_wait_ms=row.p99_queue_wait_ms,
    )


def conversation_of(row: v1.ConversationRow) -> ConversationFigures:
    return ConversationFigures(
        id=row.id,
        protocol=row.protocol,
        state=row.state,
        messages=row.messages,
        participants=tuple(row.participants),
        reply_by_ms=row.reply_by_ms,
        last_at_ms=row.last_at_ms,
        detail=row.detail,
    )


def top_of(reply: v1.TopReply) -> TopSnapshot:
    return TopSnapshot(
        at_ms=reply.at_ms,
        position=reply.position,
        agents=tuple(figures_of(a) for a in reply.agents),
        conversations=tuple(conversation_of(c) for c in reply.conversations),
    )


def debug_of(reply: v1.AgentDebug) -> AgentDebug:
    return AgentDebug(
        agent=figures_of(reply.agent or v1.AgentRow()),
        traps=tuple(
            TrapInfo(t.at_ms, t.replica, t.kind, t.reason, t.message_id, t.conversation_id)
            for t in reply.traps
        ),
        restarts=tuple(
            RestartInfo(r.at_ms, r.replica, r.attempt, r.delay_ms) for r in reply.restarts
        ),
        conversations=tuple(conversation_of(c) for c in reply.conversations),
        settings=settings_of(reply.settings),
    )
