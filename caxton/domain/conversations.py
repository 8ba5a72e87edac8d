"""The fold of conversations: who talks, how far each protocol got, and what broke it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, assert_never

from caxton.domain.events import (
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
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Recorded,
    ToolCalled,
    ToolFailed,
    ToolReturned,
)
from caxton.domain.frozen import replace
from caxton.domain.frozen_map import FrozenMap
from caxton.domain.ids import instance_key, is_capability
from caxton.domain.protocols import TABLES, ProtocolState, agent_of, begin, outcome, step

Outcome = Literal["open", "done", "failed", "violated"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """A message that broke its conversation's protocol, and why."""

    position: int
    message_id: str
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationState:
    """One conversation. `failure` says what ended it when a dead letter or a trap did."""

    id: str
    protocol: str = ""
    initiator: str = ""
    participants: frozenset[str] = frozenset()
    message_count: int = 0
    handled: int = 0
    started_at: int = 0
    last_at: int = 0
    outcome: Outcome = "open"
    violations: tuple[Violation, ...] = ()
    dead_letters: int = 0
    traps: int = 0
    failure: str = ""
    protocol_state: ProtocolState | None = None


Conversations = FrozenMap[str, ConversationState]
NO_CONVERSATIONS: Conversations = FrozenMap()


def targets(sent: MessageSent) -> tuple[str, ...]:
    """The agents (or clients) a message was meant for, capabilities resolved by delivery."""
    named = (agent_of(d) for d in sent.deliveries)
    plain = (r for r in sent.message.receivers if not is_capability(r))
    return tuple(dict.fromkeys((*named, *plain)))


def evolve(conversations: Conversations, recorded: Recorded) -> Conversations:
    """The conversations after one recorded event; events without a conversation pass by."""
    event = recorded.event
    match event:
        case MessageSent(message=message):
            if not message.conversation_id:
                return conversations
            current = _get(conversations, message.conversation_id, recorded.at)
            return conversations.set(current.id, _settle(_sent(current, event, recorded)))
        case MessageHandled(conversation_id=cid):
            if not cid:
                return conversations
            current = _get(conversations, cid, recorded.at)
            handled = replace(current, handled=current.handled + 1, last_at=recorded.at)
            return conversations.set(cid, handled)
        case MessageDeadLettered(conversation_id=cid, receiver=receiver, reason=reason):
            if not cid:
                return conversations
            current = _get(conversations, cid, recorded.at)
            dead = replace(
                current,
                dead_letters=current.dead_letters + 1,
                last_at=recorded.at,
                failure=current.failure or f"dead letter to {receiver}: {reason}",
            )
            return conversations.set(cid, _settle(dead))
        case AgentTrapped(conversation_id=cid):
            if not cid:
                return conversations
            current = _get(conversations, cid, recorded.at)
            where = instance_key(event.agent, event.replica)
            trapped = replace(
                current,
                traps=current.traps + 1,
                last_at=recorded.at,
                failure=current.failure or f"{where} trapped: {event.kind}: {event.reason}",
            )
            return conversations.set(cid, _settle(trapped))
        case (
            AgentDeployed()
            | AgentStarted()
            | AgentRestarting()
            | AgentFailed()
            | AgentStopped()
            | AgentRemoved()
            | AgentReconfigured()
            | NodeStarted()
            | NodeStopped()
            | ToolCalled()
            | ToolReturned()
            | ToolFailed()
            | BreakerOpened()
            | BreakerHalfOpened()
            | BreakerClosed()
        ):
            return conversations
        case _:
            assert_never(event)


def _get(conversations: Conversations, cid: str, at: int) -> ConversationState:
    found = conversations.get(cid)
    return found if found is not None else ConversationState(id=cid, started_at=at, last_at=at)


def _sent(conv: ConversationState, sent: MessageSent, recorded: Recorded) -> ConversationState:
    message = sent.message
    sender = agent_of(message.sender)
    to = targets(sent)
    first = conv.message_count == 0
    conv = replace(
        conv,
        initiator=sender if first else conv.initiator,
        participants=conv.participants | {sender, *to},
        message_count=conv.message_count + 1,
        last_at=recorded.at,
    )
    if not message.protocol or (conv.protocol_state is None and message.protocol not in TABLES):
        return conv  # a message outside any known protocol is not checked
    state = conv.protocol_state or begin(message.protocol, sender)
    state, reasons = step(state, message, to, at=recorded.at)
    violations = tuple(
        Violation(position=recorded.position, message_id=message.id, reason=r) for r in reasons
    )
    return replace(
        conv,
        protocol=state.protocol,
        protocol_state=state,
        violations=conv.violations + violations,
    )


def _settle(conv: ConversationState) -> ConversationState:
    """Violated beats failed, which beats done; a failed conversation never comes back."""
    settled: Outcome
    if conv.violations:
        settled = "violated"
    elif conv.failure:
        settled = "failed"
    elif conv.protocol_state is not None:
        settled = outcome(conv.protocol_state)
    else:
        settled = "open"
    return conv if settled == conv.outcome else replace(conv, outcome=settled)
