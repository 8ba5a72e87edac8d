"""Between the domain's values and the API's protobuf messages, both ways."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from caxton.domain import digests
from caxton.domain.acl import AclMessage, message_from_dict
from caxton.domain.agents import AgentState, status_line
from caxton.domain.conversations import ConversationState
from caxton.domain.errors import InvalidAgentSpec
from caxton.domain.events import DEFAULT_SNAPSHOT_EVERY, Limits, Recorded
from caxton.domain.memory import Memory
from caxton.domain.protocols import phase
from caxton.domain.schema import encode, type_name
from caxton.shell.api.generated.caxton import v1

if TYPE_CHECKING:  # the client imports this module, and needs no runtime
    from caxton.shell.runtime.node import SendResult


def envelope_of(message: AclMessage) -> v1.AclEnvelope:
    return v1.AclEnvelope(
        id=message.id,
        performative=message.performative.value,
        sender=message.sender,
        receivers=list(message.receivers),
        content=message.content,
        language=message.language,
        ontology=message.ontology,
        protocol=message.protocol,
        conversation_id=message.conversation_id,
        reply_with=message.reply_with,
        in_reply_to=message.in_reply_to,
        reply_by=message.reply_by,
        traceparent=message.traceparent,
    )


def message_of(envelope: v1.AclEnvelope, *, max_content_bytes: int) -> AclMessage:
    """Validates an envelope from a client; raises InvalidMessage naming the field."""
    return message_from_dict(
        envelope_dict(envelope), max_content_bytes=max_content_bytes, require_id=False
    )


def envelope_dict(envelope: v1.AclEnvelope) -> dict[str, Any]:
    """The envelope as the JSON-shaped dict the domain validates and stores."""
    return {
        "id": envelope.id,
        "performative": envelope.performative,
        "sender": envelope.sender,
        "receivers": list(envelope.receivers),
        "content": envelope.content,
        "language": envelope.language or "json",
        "ontology": envelope.ontology,
        "protocol": envelope.protocol,
        "conversation_id": envelope.conversation_id,
        "reply_with": envelope.reply_with,
        "in_reply_to": envelope.in_reply_to,
        "reply_by": envelope.reply_by,
        "traceparent": envelope.traceparent,
    }


def send_reply(result: SendResult) -> v1.SendReply:
    return v1.SendReply(
        message_id=result.message_id,
        conversation_id=result.conversation_id,
        deliveries=list(result.deliveries),
        dead_letters=[v1.DeadLetter(receiver=r, reason=why) for r, why in result.dead_letters],
        reply=envelope_of(result.reply) if result.reply is not None else None,
        accepted_before=result.accepted_before,
    )


def limits_of(limits: v1.Limits | None) -> Limits:
    default = Limits()
    if limits is None:
        return default
    return Limits(
        memory_bytes=limits.memory_bytes or default.memory_bytes,
        timeout_ms=limits.timeout_ms or default.timeout_ms,
        mailbox=limits.mailbox or default.mailbox,
    )


def agent_info(agent: AgentState, *, node: str = "") -> v1.AgentInfo:
    """`node`: the node running its instances (caxton.domain.roster)."""
    return v1.AgentInfo(
        name=agent.name,
        component_digest=digests.shown(agent.component),
        component_size=agent.component_size,
        capabilities=list(agent.capabilities),
        replicas=len(agent.instances),
        limits=v1.Limits(
            memory_bytes=agent.limits.memory_bytes,
            timeout_ms=agent.limits.timeout_ms,
            mailbox=agent.limits.mailbox,
        ),
        status=agent.status,
        status_line=status_line(agent),
        instances=[
            v1.InstanceInfo(
                replica=i.replica,
                lifecycle=i.lifecycle,
                incarnation=i.incarnation,
                restarts=len(i.restarts),
                traps=i.traps,
                handled=i.handled,
                last_error=i.last_error,
                node=node,
                memory=i.memory_from > 0,
                memory_rebuilt=i.started.rebuilt if i.started else 0,
                memory_restored=i.started.restored if i.started else 0,
                quarantined=i.quarantined,
                memory_diverged=i.started.diverged if i.started else "",
            )
            for i in agent.instances
        ],
        tools=list(agent.tools),
    )


def conversation_info(conversation: ConversationState) -> v1.ConversationInfo:
    return v1.ConversationInfo(
        id=conversation.id,
        protocol=conversation.protocol,
        state=conversation.outcome,
        participants=sorted(conversation.participants),
        message_count=conversation.message_count,
        started_at_ms=conversation.started_at,
        last_at_ms=conversation.last_at,
        violations=[v.reason for v in conversation.violations],
        phase=phase(conversation.protocol_state) if conversation.protocol_state else "",
    )


def event_record(recorded: Recorded) -> v1.EventRecord:
    return v1.EventRecord(
        position=recorded.position,
        stream=recorded.stream,
        version=recorded.version,
        at_ms=recorded.at,
        type=type_name(recorded.event),
        payload_json=orjson.dumps(encode(recorded.event)).decode(),
        traceparent=recorded.traceparent,
        node=recorded.node,
    )


def snapshot_every_of(value: int | None) -> int:
    """`DeployRequest.snapshot_every`: unset takes the default; 0 never snapshots."""
    if value is None:
        return DEFAULT_SNAPSHOT_EVERY
    if value < 0:
        raise InvalidAgentSpec("snapshot_every", "must be 0 (never) or more")
    return value


def memory_reply(memory: Memory) -> v1.AgentMemory:
    return v1.AgentMemory(
        name=memory.agent,
        replica=memory.replica,
        state=memory.state,
        handled=memory.handled,
        restored=memory.restored,
        rebuilt=memory.rebuilt,
        position=memory.position,
        quarantined=list(memory.quarantined),
        rebuild_us=memory.rebuild_us,
    )
