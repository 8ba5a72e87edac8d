"""The stored form of events: decode(encode(event)) gives the event back, through JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from caxton.domain import (
    EVENT_TYPES,
    AclMessage,
    AgentDeployed,
    AgentStarted,
    Event,
    HostCall,
    Limits,
    MessageHandled,
    MessageSent,
    NodeStopped,
    Performative,
    Recorded,
    RestartPolicy,
    UnknownEventType,
    decode,
    encode,
    type_name,
)
from caxton.domain.events import AgentReconfigured
from caxton.domain.schema import UPCASTERS
from tests.domain.domain_histories import histories
from tests.samples import every_event_type

EXAMPLES: list[Event] = every_event_type()


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


def reference_decode(name: str, data: dict[str, Any]) -> Event:
    """The generic decoder the per-type ones replaced: keyword arguments by field name."""
    cls = next(t for t in EVENT_TYPES if t.__name__ == name)
    kwargs = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
    if cls is MessageSent:
        m = kwargs["message"]
        kwargs["message"] = AclMessage(
            **{
                **m,
                "performative": Performative(m["performative"]),
                "receivers": tuple(m["receivers"]),
            }
        )
        kwargs["deliveries"] = tuple(kwargs.get("deliveries", ()))
    elif cls is AgentDeployed:
        kwargs["capabilities"] = tuple(kwargs.get("capabilities", ()))
        kwargs["tools"] = tuple(kwargs.get("tools", ()))
        kwargs["limits"] = Limits(**kwargs.get("limits", {}))
        kwargs["restart"] = RestartPolicy(**kwargs.get("restart", {}))
    elif cls is AgentReconfigured and kwargs.get("tools") is not None:
        kwargs["tools"] = tuple(kwargs["tools"])
    elif cls is MessageHandled or cls is AgentStarted:
        kwargs["journal"] = tuple(HostCall(**j) for j in kwargs.get("journal", ()))
    return cls(**kwargs)


def without_defaults(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The stored dict less every field that has a default (as an older writer may omit)."""
    optional = {
        f.name
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    return {k: v for k, v in data.items() if k not in optional}


@pytest.mark.parametrize("event", EXAMPLES, ids=type_name)
def test_each_decoder_agrees_with_the_generic_one(event: Event) -> None:
    data = json.loads(json.dumps(encode(event)))
    assert decode(type_name(event), data) == reference_decode(type_name(event), data)
    sparse = without_defaults(type(event), data)
    assert decode(type_name(event), sparse) == reference_decode(type_name(event), sparse)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_generated_events_decode_as_the_generic_decoder_does(log: list[Recorded]) -> None:
    for recorded in log:
        name = type_name(recorded.event)
        data = json.loads(json.dumps(encode(recorded.event)))
        assert decode(name, data) == reference_decode(name, data)


def test_a_missing_field_takes_its_default_and_a_missing_required_one_is_refused() -> None:
    assert decode(
        "MessageHandled", {"message_id": "m", "conversation_id": "c", "agent": "a", "replica": 0}
    ) == (MessageHandled(message_id="m", conversation_id="c", agent="a", replica=0))
    assert decode(
        "AgentDeployed", {"agent": "a", "component": "x", "component_size": 1, "replicas": 1}
    ) == (AgentDeployed(agent="a", component="x", component_size=1, replicas=1))
    with pytest.raises(KeyError, match="replica"):
        decode("MessageHandled", {"message_id": "m", "conversation_id": "c", "agent": "a"})


def test_the_stored_message_keeps_its_types() -> None:
    event = decode(
        "MessageSent",
        json.loads(json.dumps(encode(next(e for e in EXAMPLES if isinstance(e, MessageSent))))),
    )
    assert isinstance(event, MessageSent)
    assert event.message.performative is Performative.REQUEST
    assert type(event.message.receivers) is tuple and type(event.deliveries) is tuple


def test_an_older_version_is_upcast_before_it_is_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UPCASTERS, ("NodeStopped", 0), lambda d: {"node": d.pop("name")})
    stored = {"name": "n1"}
    assert decode("NodeStopped", stored, 0) == NodeStopped(node="n1")
    assert stored == {"name": "n1"}  # the caller's dict is left as it was


def test_encode_gives_the_fields_in_order_as_plain_json() -> None:
    for event in EXAMPLES:
        data = encode(event)
        assert list(data) == [f.name for f in dataclasses.fields(event)]
        assert json.loads(json.dumps(data)) == data
