"""The stored form of events: decode(encode(event)) gives the event back, through JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings

from caxton.domain import (
    EVENT_TYPES,
    Event,
    Recorded,
    UnknownEventType,
    decode,
    encode,
    type_name,
)
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
