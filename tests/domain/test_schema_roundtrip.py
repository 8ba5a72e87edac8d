"""The stored form of events: decode(encode(event)) gives the event back, through JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from caxton.domain import (
    EVENT_TYPES,
    AclMessage,
    AgentDeployed,
    AgentFailed,
    AgentRemoved,
    AgentRestarting,
    AgentStarted,
    AgentStopped,
    AgentTrapped,
    Event,
    HostCall,
    Limits,
    MessageDeadLettered,
    MessageHandled,
    MessageSent,
    NodeStarted,
    NodeStopped,
    Performative,
    Recorded,
    RestartPolicy,
    UnknownEventType,
    decode,
    encode,
    type_name,
)
from tests.domain.domain_histories import histories

EXAMPLES: list[Event] = [
    AgentDeployed(
        agent="pricer",
        component="sha256:ab",
        component_size=1234,
        replicas=3,
        capabilities=("pricing", "search"),
        limits=Limits(memory_bytes=1 << 20, timeout_ms=50, mailbox=8),
        restart=RestartPolicy(max_restarts=5, window_ms=10_000),
        config='{"currency": "EUR"}',
    ),
    AgentStarted(
        agent="pricer", replica=2, incarnation=7, journal=(HostCall(kind="now", value="17"),)
    ),
    AgentTrapped(
        agent="pricer",
        replica=2,
        incarnation=7,
        kind="trap",
        reason="unreachable",
        message_id="m1",
        conversation_id="c1",
    ),
    AgentRestarting(agent="pricer", replica=2, attempt=2, delay_ms=200),
    AgentFailed(agent="pricer", replica=2, reason="restarted 3 times in 60s; giving up"),
    AgentStopped(agent="pricer"),
    AgentRemoved(agent="pricer"),
    MessageSent(
        message=AclMessage(
            id="m1",
            performative=Performative.CFP,
            sender="buyer",
            receivers=("capability:pricing", "client:cli"),
            content='{"item": 1}',
            ontology="shop",
            protocol="fipa-contract-net",
            conversation_id="c1",
            reply_with="r1",
            in_reply_to="r0",
            reply_by=5_000,
            traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        deliveries=("pricer#0", "client:cli"),
        cause="m0",
    ),
    MessageHandled(
        message_id="m1",
        conversation_id="c1",
        agent="pricer",
        replica=0,
        journal=(HostCall(kind="random", value="0.25"), HostCall(kind="tool", value="{}")),
        duration_us=37,
        error="bad input",
    ),
    MessageDeadLettered(
        message_id="m1", conversation_id="c1", receiver="ghost", reason="no agent named ghost"
    ),
    NodeStarted(node="node-a", address="127.0.0.1:7946", version="0.1.0"),
    NodeStopped(node="node-a"),
]


def stored(event: Event) -> Event:
    return decode(type_name(event), json.loads(json.dumps(encode(event))))


def test_the_examples_cover_every_event_type() -> None:
    assert {type(e) for e in EXAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", EXAMPLES, ids=type_name)
def test_every_event_type_survives_encode_and_decode(event: Event) -> None:
    assert stored(event) == event


def test_an_unknown_event_type_is_reported_by_name() -> None:
    with pytest.raises(UnknownEventType, match="AgentTeleported"):
        decode("AgentTeleported", {})


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_generated_events_survive_encode_and_decode(log: list[Recorded]) -> None:
    for recorded in log:
        assert stored(recorded.event) == recorded.event
