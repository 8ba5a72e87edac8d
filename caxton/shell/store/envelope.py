"""The stored form of one event: an orjson envelope around `schema.encode`, and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from caxton.domain import schema
from caxton.domain.events import Event, Recorded, stream_of
from caxton.domain.frozen import positional
from caxton.shell.store.errors import LogCorrupted


@dataclass(frozen=True, slots=True)
class Pending:
    """An event on its way into the log, with its time (ms) and W3C trace context."""

    event: Event
    at: int
    traceparent: str = ""


class Row(NamedTuple):
    """One stored event as a backend returns it."""

    position: int
    stream: str
    version: int
    topic: str
    state: bytes


class Prepared(NamedTuple):
    """A pending event already encoded; the writer gives it a version."""

    stream: str
    topic: str
    state: bytes
    pending: Pending


def prepare(pending: Pending) -> Prepared:
    """Encodes an event to the bytes stored: {"v", "at", "tp", "d"}."""
    event = pending.event
    envelope: dict[str, Any] = {
        "v": schema.SCHEMA_VERSION,
        "at": pending.at,
        "tp": pending.traceparent,
        "d": schema.encode(event),
    }
    return Prepared(stream_of(event), schema.type_name(event), orjson.dumps(envelope), pending)


def recorded(row: Row, where: str) -> Recorded:
    """Decodes a stored row, upcasting old schema versions; raises `LogCorrupted` if it cannot."""
    position, stream, version, topic, state = row
    try:
        envelope = orjson.loads(state)
        v = envelope["v"]
        event = schema.decode(topic, envelope["d"], v if type(v) is int else int(v))
        at = envelope["at"]
        if type(at) is not int:
            at = int(at)
        traceparent = envelope.get("tp", "")
        if type(traceparent) is not str:
            traceparent = str(traceparent)
    except Exception as e:  # any failure to decode is the same fact: a bad payload
        reason = f"the payload of {topic!r} v{version} does not decode: {e!r}"
        raise LogCorrupted(where, reason, position=position, stream=stream) from e
    return _recorded(position, stream, version, at, event, traceparent)


# Recorded(...) without its frozen __init__: the read path makes one per event.
_recorded = positional(Recorded)
