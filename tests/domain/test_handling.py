"""The message path's decisions: batches equal their inputs one by one, nothing raises."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from caxton.domain import (
    NO_CURSOR,
    AclMessage,
    Agents,
    AgentStopped,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    evolve_agents,
)
from caxton.domain.events import AgentTrapped, NodeStarted
from caxton.domain.handling import (
    Accept,
    Accepted,
    Append,
    Decision,
    Deliver,
    Handled,
    Input,
    MailboxRefused,
    Reply,
    Supervise,
    Undelivered,
    decide,
)
from caxton.domain.world import EMPTY, fold
from tests.domain.domain_histories import Log, P
from tests.domain.test_routing import agents_of, world


def _agents() -> Agents:
    log = world(
        ("echo", 1, ()), ("pool", 3, ("work",)), ("other", 2, ("work",)), ("idle", 1, ("work",))
    )
    log.add(AgentStopped(agent="idle"))
    return agents_of(log)


AGENTS = _agents()
INSTANCES = ("echo#0", "pool#0", "pool#1", "pool#2", "other#0", "other#1")
RECEIVERS = ("echo", "pool", "other", "idle", "nobody", "capability:work", "capability:none")
CLIENTS = ("client:a", "client:b")

ids = st.text("abcdef0123456789", min_size=1, max_size=6)


@st.composite
def messages(draw: Any, senders: tuple[str, ...] = (*CLIENTS, "echo", "pool")) -> AclMessage:
    return AclMessage(
        id="m-" + draw(ids),
        performative=draw(st.sampled_from([P.REQUEST, P.INFORM, P.CFP, P.AGREE, P.FAILURE])),
        sender=draw(st.sampled_from((*senders, "", "platform"))),
        receivers=tuple(draw(st.lists(st.sampled_from(RECEIVERS + CLIENTS), max_size=4))),
        conversation_id="c-" + draw(ids),
        traceparent=draw(st.sampled_from(["", "00-" + "1" * 32 + "-" + "2" * 16 + "-01"])),
    )


@st.composite
def handlings(draw: Any) -> Handled:
    key = draw(st.sampled_from(INSTANCES))
    agent, replica = key.split("#")
    trapped = draw(st.booleans())
    return Handled(
        agent=agent,
        replica=int(replica),
        incarnation=1,
        message=draw(st.none() | messages()),
        sent=tuple(draw(st.lists(messages(senders=(agent,)), max_size=3))),
        duration_us=draw(st.integers(0, 10_000)),
        error=draw(st.sampled_from(["", "bad input"])),
        trap=("trap", "unreachable") if trapped else None,
    )


inputs = st.one_of(
    st.builds(Accept, messages(), st.booleans()),
    handlings(),
    st.builds(Undelivered, messages(), st.sampled_from(INSTANCES), st.just("mailbox full")),
    st.builds(Append, st.just((NodeStarted(node="n", address="", version="1"),))),
    st.builds(
        Append,
        st.tuples(
            st.builds(MessageSent, message=messages(), deliveries=st.just(("echo#0", "client:a")))
        ),
    ),
)
rooms = st.dictionaries(st.sampled_from(INSTANCES), st.tuples(st.integers(0, 3), st.just(3)))


def _parts(d: Decision) -> tuple[Any, ...]:
    return (d.events, d.traceparents, d.effects, d.outcomes, d.new_streams, d.cursor, d.free)


@settings(max_examples=300, deadline=None)
@given(st.lists(inputs, max_size=12), rooms)
def test_deciding_a_batch_equals_deciding_its_inputs_one_by_one(
    batch: list[Input], room: dict[str, tuple[int, int]]
) -> None:
    whole = decide(AGENTS, NO_CURSOR, room, batch)

    cursor, current = NO_CURSOR, dict(room)
    events: list[Any] = []
    traceparents: list[str] = []
    effects: list[Any] = []
    outcomes: list[Any] = []
    streams: list[str] = []
    for item in batch:  # each decided alone, from what the one before left
        one = decide(AGENTS, cursor, current, [item])
        cursor = one.cursor
        current.update({key: (left, room[key][1]) for key, left in one.free.items()})
        events += one.events
        traceparents += one.traceparents
        effects += one.effects
        outcomes += one.outcomes
        streams += one.new_streams

    assert (events, traceparents, effects, outcomes, streams, cursor) == (
        whole.events,
        whole.traceparents,
        whole.effects,
        whole.outcomes,
        whole.new_streams,
        whole.cursor,
    )
    assert {key: current[key][0] for key in whole.free} == whole.free
    assert all(current[key] == room[key] for key in current.keys() - whole.free.keys())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.builds(Accept, messages(), st.booleans()) | handlings(), max_size=10))
def test_a_batch_decides_as_its_inputs_would_with_each_committed_before_the_next(
    batch: list[Input],
) -> None:
    """Where order allows: messages and handlings without traps change nothing routing
    reads, so deciding them against the world folded after each equals the batch."""
    batch = [i for i in batch if not (isinstance(i, Handled) and i.trap is not None)]
    whole = decide(AGENTS, NO_CURSOR, {}, batch)

    log, agents, cursor = Log(), AGENTS, NO_CURSOR
    events: list[Any] = []
    for item in batch:
        one = decide(agents, cursor, {}, [item])
        cursor = one.cursor
        events += one.events
        for event in one.events:
            agents = evolve_agents(agents, log.add(event))

    assert events == whole.events
    assert cursor == whole.cursor


@settings(max_examples=300, deadline=None)
@given(st.lists(inputs, max_size=20), rooms)
def test_no_batch_makes_a_decision_raise_and_every_event_folds(
    batch: list[Input], room: dict[str, tuple[int, int]]
) -> None:
    decision = decide(AGENTS, NO_CURSOR, room, batch)

    assert len(decision.events) == len(decision.traceparents)
    assert len(decision.outcomes) == len(decision.starts) == len(batch)
    assert all(left >= 0 for left in decision.free.values())
    log = Log()
    fold([log.add(e) for e in decision.events], EMPTY)  # raises on an event it cannot fold


def _request(to: str, sender: str = "client:a", **changes: Any) -> AclMessage:
    return AclMessage(
        id="m-1",
        performative=changes.pop("performative", P.REQUEST),
        sender=sender,
        receivers=(to,),
        conversation_id="c-1",
        **changes,
    )


def test_a_clients_message_is_refused_when_an_instance_it_goes_to_has_no_room() -> None:
    decision = decide(AGENTS, NO_CURSOR, {"echo#0": (0, 5)}, [Accept(_request("echo"))])

    assert decision.outcomes == [MailboxRefused("echo#0", 5)]
    assert decision.events == [] and decision.effects == []


def test_an_accepted_message_is_sent_delivered_and_its_new_stream_named() -> None:
    message = _request("echo")
    decision = decide(AGENTS, NO_CURSOR, {"echo#0": (1, 5)}, [Accept(message, True)])

    assert decision.outcomes == [Accepted(("echo#0",), ())]
    assert decision.events == [MessageSent(message=message, deliveries=("echo#0",))]
    assert decision.effects == [Deliver("echo#0", message)]
    assert decision.new_streams == ["conversation:c-1"]
    assert decision.free == {"echo#0": 0}


def test_an_agents_message_to_a_full_mailbox_is_dead_lettered_with_a_failure_back() -> None:
    request = _request("echo")
    reply = _request("pool", sender="echo", performative=P.INFORM)
    handled = Handled(agent="echo", replica=0, incarnation=1, message=request, sent=(reply,))
    decision = decide(AGENTS, NO_CURSOR, {"pool#0": (0, 2)}, [handled])

    kinds = [type(e).__name__ for e in decision.events]
    assert kinds == ["MessageHandled", "MessageSent", "MessageDeadLettered", "MessageSent"]
    dead = decision.events[2]
    assert isinstance(dead, MessageDeadLettered) and dead.reason == "mailbox full (2 messages)"
    assert decision.traceparents == [request.traceparent] * 4


def test_a_trap_dead_letters_the_message_answers_its_sender_and_asks_for_supervision() -> None:
    request = _request("echo")
    trapped = Handled(
        agent="echo",
        replica=0,
        incarnation=2,
        message=request,
        sent=(),
        trap=("timeout", "out of time"),
    )
    decision = decide(AGENTS, NO_CURSOR, {}, [trapped])

    assert [type(e) for e in decision.events] == [AgentTrapped, MessageDeadLettered, MessageSent]
    failure = decision.events[2]
    assert isinstance(failure, MessageSent) and failure.message.performative == P.FAILURE
    assert "timeout: out of time" in failure.message.content
    assert decision.effects == [Reply("client:a", failure.message), Supervise("echo", 0)]


def test_only_a_final_reply_reaches_a_waiting_client() -> None:
    agree = replace(_request("client:a", sender="echo"), performative=P.AGREE, id="m-2")
    inform = replace(agree, performative=P.INFORM, id="m-3")
    handled = Handled(
        agent="echo", replica=0, incarnation=1, message=_request("echo"), sent=(agree, inform)
    )
    decision = decide(AGENTS, NO_CURSOR, {}, [handled])

    assert isinstance(decision.events[0], MessageHandled)
    assert decision.effects == [Reply("client:a", inform)]


def test_replicas_and_capabilities_take_turns_across_a_batch() -> None:
    batch: list[Input] = [
        Accept(replace(_request("capability:work"), id=f"m-{i}")) for i in range(4)
    ]
    decision = decide(AGENTS, NO_CURSOR, {}, batch)

    targets = [e.target for e in decision.effects if isinstance(e, Deliver)]
    assert targets == ["other#0", "pool#0", "other#1", "pool#1"]
