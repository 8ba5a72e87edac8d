"""One example of every event type, for round trips through the log."""

from __future__ import annotations

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    EVENT_TYPES,
    AgentDeployed,
    AgentFailed,
    AgentReconfigured,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    BreakerClosed,
    BreakerHalfOpened,
    BreakerOpened,
    Event,
    HostCall,
    Limits,
    MemberChanged,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    RestartPolicy,
    ShardClaimed,
    ShardReleased,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)


def message(conversation: str = "c1", index: int = 0) -> AclMessage:
    return AclMessage(
        id=f"m{index}",
        performative=Performative.REQUEST,
        sender="client:cli",
        receivers=("echo",),
        content='{"n": 1, "text": "héllo"}',
        protocol="fipa-request",
        conversation_id=conversation,
        reply_with=f"r{index}",
        reply_by=1_700_000_000_000,
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )


def every_event_type() -> list[Event]:
    journal = (HostCall(kind="now", value="1700000000000"), HostCall(kind="random", value="42"))
    events: list[Event] = [
        AgentDeployed(
            agent="echo",
            component="sha256:abc",
            component_size=1234,
            replicas=2,
            capabilities=("echo", "ping"),
            limits=Limits(memory_bytes=1 << 20, timeout_ms=50, mailbox=8),
            restart=RestartPolicy(max_restarts=5),
            config='{"k": "v"}',
            tools=("db.read_query", "time.*"),
        ),
        AgentStarted(agent="echo", replica=0, incarnation=1, journal=journal),
        AgentTrapped(
            agent="echo",
            replica=0,
            incarnation=1,
            kind="trap",
            reason="unreachable",
            message_id="m0",
            conversation_id="c1",
            duration_us=1234,
        ),
        AgentRestarting(agent="echo", replica=0, attempt=1, delay_ms=100),
        AgentFailed(agent="echo", replica=1, reason="restart budget spent"),
        AgentStopped(agent="echo"),
        AgentRemoved(agent="echo"),
        AgentReconfigured(
            agent="echo",
            memory_bytes=128 << 20,
            timeout_ms=10_000,
            mailbox=4,
            max_restarts=5,
            restart_window_ms=120_000,
            breaker_timeout_ms=10_000,
            breaker_threshold=3,
            tools=("db.*",),
        ),
        MessageSent(message=message(), deliveries=("echo#0", "echo#1"), cause="m-1"),
        MessageHandled(
            message_id="m0",
            conversation_id="c1",
            agent="echo",
            replica=0,
            journal=journal,
            duration_us=37,
            error="",
        ),
        MessageDeadLettered(
            message_id="m0", conversation_id="c1", receiver="nobody", reason="unknown"
        ),
        NodeStarted(node="n1", address="127.0.0.1:7946", version="0.1.0"),
        NodeStopped(node="n1"),
        ShardClaimed(shard=3, node="n1", epoch=2, previous="n2", reason="expired"),
        ShardReleased(shard=3, node="n1", epoch=2),
        MemberChanged(node="n2", state="suspect", by="n1", incarnation=4, address="127.0.0.1:7947"),
        ToolCalled(
            call_id="t0",
            server="db",
            tool="read_query",
            arguments='{"query": "SELECT 1"}',
            agent="echo",
            conversation_id="c1",
            message_id="m0",
        ),
        ToolReturned(
            call_id="t0",
            server="db",
            tool="read_query",
            result='{"content": [{"type": "text", "text": "[{\'1\': 1}]"}], "isError": false}',
            duration_us=812,
            agent="echo",
            conversation_id="c1",
            truncated=True,
            size=2_000_000,
        ),
        ToolFailed(
            call_id="t1",
            server="db",
            tool="write_query",
            kind="refused",
            reason="db.write_query is not granted to echo",
            agent="echo",
        ),
        BreakerOpened(server="db", failures=3, reset_ms=30_000, reason="timeout", agent="echo"),
        BreakerHalfOpened(server="db", conversation_id="c1"),
        BreakerClosed(server="db"),
    ]
    assert {type(e) for e in events} == set(EVENT_TYPES), "a new event type needs a sample"
    return events
