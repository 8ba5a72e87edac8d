"""The conversation fold: counts, times, and what fails a conversation."""

from __future__ import annotations

from caxton.domain import (
    NO_CONVERSATIONS,
    AgentTrapped,
    Conversations,
    ConversationState,
    MessageDeadLettered,
    MessageHandled,
    Violation,
    evolve_conversations,
)
from tests.domain.domain_histories import Log, P


def folded(log: Log) -> Conversations:
    conversations = NO_CONVERSATIONS
    for recorded in log.recorded:
        conversations = evolve_conversations(conversations, recorded)
    return conversations


def test_a_conversation_counts_its_messages_and_keeps_its_times() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request", at=1_000)
    log.add(MessageHandled(message_id="m1", conversation_id="c1", agent="bob", replica=0), at=1_200)
    log.send(P.AGREE, "bob", "alice", protocol="fipa-request", at=1_500)
    state = folded(log)["c1"]
    assert (state.message_count, state.handled) == (2, 1)
    assert (state.started_at, state.last_at) == (1_000, 1_500)
    assert state.initiator == "alice"
    assert state.protocol == "fipa-request"


def test_a_dead_letter_fails_the_conversation() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "ghost", protocol="fipa-request", deliveries=())
    log.add(
        MessageDeadLettered(
            message_id="m1", conversation_id="c1", receiver="ghost", reason="no agent named ghost"
        )
    )
    state = folded(log)["c1"]
    assert state.outcome == "failed"
    assert state.dead_letters == 1
    assert state.failure == "dead letter to ghost: no agent named ghost"


def test_a_trap_while_handling_fails_the_conversation() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request")
    log.add(
        AgentTrapped(
            agent="bob",
            replica=0,
            incarnation=1,
            kind="trap",
            reason="unreachable",
            message_id="m1",
            conversation_id="c1",
        )
    )
    log.send(P.INFORM, "bob", "alice", protocol="fipa-request")
    state = folded(log)["c1"]
    assert state.outcome == "failed"
    assert state.traps == 1
    assert state.failure == "bob#0 trapped: trap: unreachable"


def test_a_violated_conversation_stays_violated_after_a_trap() -> None:
    log = Log()
    log.send(P.INFORM, "alice", "bob", protocol="fipa-request")
    log.add(
        AgentTrapped(
            agent="bob", replica=0, incarnation=1, kind="trap", reason="x", conversation_id="c1"
        )
    )
    state = folded(log)["c1"]
    assert state.outcome == "violated"
    assert state.violations == (
        Violation(
            position=1,
            message_id="m1",
            reason="a fipa-request exchange with bob must open with request, not inform",
        ),
    )


def test_conversations_are_kept_apart() -> None:
    log = Log()
    log.send(P.REQUEST, "alice", "bob", protocol="fipa-request", conversation="c1")
    log.send(P.QUERY_IF, "carol", "dave", protocol="fipa-query", conversation="c2")
    log.send(P.INFORM, "bob", "alice", protocol="fipa-request", conversation="c1")
    conversations = folded(log)
    assert conversations["c1"].outcome == "done"
    assert conversations["c2"].outcome == "open"
    assert isinstance(conversations["c2"], ConversationState)


def test_events_without_a_conversation_leave_the_conversations_alone() -> None:
    log = Log()
    log.add(AgentTrapped(agent="bob", replica=0, incarnation=1, kind="trap", reason="x"))
    log.add(MessageHandled(message_id="m1", conversation_id="", agent="bob", replica=0))
    assert len(folded(log)) == 0
