"""A stored row decodes to the same event by the typed (msgspec) path and the generic one."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from caxton.domain.events import Event, NodeStopped, Recorded, stream_of
from caxton.domain.schema import SCHEMA_VERSION, UPCASTERS, encode, type_name
from caxton.shell.store import LogCorrupted, Pending, envelope
from caxton.shell.store.envelope import Row, prepare, recorded, recorded_generic
from tests.domain.domain_histories import histories
from tests.samples import every_event_type

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def row_of(event: Event, *, position: int = 7, at: int = 1_700_000_000_123) -> Row:
    prepared = prepare(Pending(event=event, at=at, traceparent=TRACE))
    return Row(position, prepared.stream, 3, prepared.topic, bytes(prepared.state))


def row_with(topic: str, stored: dict[str, object]) -> Row:
    return Row(7, "node:n1", 3, topic, orjson.dumps(stored))


@pytest.mark.parametrize("event", every_event_type(), ids=type_name)
def test_every_event_type_reads_back_the_same_by_both_paths(event: Event) -> None:
    row = row_of(event)
    expected = Recorded(
        position=7,
        stream=stream_of(event),
        version=3,
        at=1_700_000_000_123,
        event=event,
        traceparent=TRACE,
    )

    assert recorded(row, "x") == expected
    assert recorded_generic(row, "x") == expected
    # and the typed path itself decodes it (recorded falls back to the generic one)
    assert envelope._TYPED[row.topic].decode(row.state).d == event


def stored_by_schema(event: Event, at: int) -> bytes:
    """What the log stored before msgspec wrote it: orjson over `schema.encode`."""
    return orjson.dumps({"v": SCHEMA_VERSION, "at": at, "tp": TRACE, "d": encode(event)})


@pytest.mark.parametrize("event", every_event_type(), ids=type_name)
def test_every_event_type_is_stored_as_the_schema_encodes_it(event: Event) -> None:
    assert row_of(event).state == stored_by_schema(event, 1_700_000_000_123)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_generated_events_are_stored_as_the_schema_encodes_them(log: list[Recorded]) -> None:
    for r in log:
        assert row_of(r.event, at=r.at).state == stored_by_schema(r.event, r.at)


def test_text_that_is_not_utf8_is_refused_as_orjson_refused_it() -> None:
    with pytest.raises(ValueError, match="surrogates"):
        prepare(Pending(event=NodeStopped(node="\ud800"), at=1))


def test_every_event_type_has_a_typed_decoder() -> None:
    assert set(envelope._TYPED) == {type_name(e) for e in every_event_type()}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories())
def test_generated_events_read_back_the_same_by_both_paths(log: list[Recorded]) -> None:
    for r in log:
        row = row_of(r.event, position=r.position, at=r.at)
        typed = recorded(row, "x")
        assert typed == recorded_generic(row, "x")
        assert typed.event == r.event


def test_an_older_schema_version_goes_through_its_upcasters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(UPCASTERS, ("NodeStopped", 0), lambda d: {"node": d["name"]})
    row = row_with("NodeStopped", {"v": 0, "at": 5, "tp": "", "d": {"name": "n1"}})

    assert recorded(row, "x").event == NodeStopped(node="n1")


def test_a_version_the_typed_shape_fits_is_still_upcast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(UPCASTERS, ("NodeStopped", 0), lambda d: {"node": d["node"].upper()})
    row = row_with("NodeStopped", {"v": 0, "at": 5, "tp": "", "d": {"node": "n1"}})

    assert recorded(row, "x").event == NodeStopped(node="N1")


def test_values_of_another_type_are_read_as_the_generic_decoder_always_read_them() -> None:
    row = row_with("NodeStopped", {"v": 1, "at": "5", "tp": None, "d": {"node": 42}})

    got = recorded(row, "x")

    assert (got.at, got.traceparent, got.event) == (5, "None", NodeStopped(node=42))  # type: ignore[arg-type]


def test_a_payload_that_does_not_decode_is_a_corrupted_log() -> None:
    for state in (b"{not json", orjson.dumps({"v": 1, "at": 5, "d": {}})):
        with pytest.raises(LogCorrupted, match=r"position 7 \(stream 'node:n1'\).*does not decode"):
            recorded(Row(7, "node:n1", 3, "NodeStopped", state), "x")
    with pytest.raises(LogCorrupted, match="unknown event type"):
        recorded(row_with("NodeTeleported", {"v": 1, "at": 5, "d": {}}), "x")
