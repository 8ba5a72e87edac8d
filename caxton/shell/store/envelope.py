"""The stored form of one event: a JSON envelope around the event (`schema.encode`), and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import msgspec
import orjson

from caxton.domain import schema
from caxton.domain.events import EVENT_TYPES, Event, Recorded, stream_of
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


StoredRow = tuple[int, str, int, str, bytes]
"""A `Row`, or the same five columns as a plain tuple (the read-only reader's rows)."""


class Prepared(NamedTuple):
    """A pending event already encoded; the writer gives it a version.

    `state` is a bytearray, not bytes: sqlite3 binds a bytearray as a BLOB at once, and
    puts bytes through its adapter lookup first (two failed attribute lookups a row)."""

    stream: str
    topic: str
    state: bytearray
    pending: Pending


class _Envelope(msgspec.Struct):
    """The stored envelope, as msgspec writes it: `d` is the event dataclass itself."""

    v: int
    at: int
    tp: str
    d: Any


class _Stamped(msgspec.Struct):
    """The envelope of an event a node of a cluster committed: `n` names the node."""

    v: int
    at: int
    tp: str
    d: Any
    n: str


_encode_into = msgspec.json.Encoder().encode_into


def prepare(pending: Pending, origin: str = "") -> Prepared:
    """Encodes an event to the bytes stored: {"v", "at", "tp", "d"}, and "n", the node
    that commits it, when it is a node of a cluster (`origin`).

    msgspec writes the event's dataclass as it is (fields in order, tuples as arrays,
    enums by value): the same bytes as orjson over `schema.encode`, which the tests
    check for every event type, in a quarter of the time. Like orjson, it refuses text
    that is not valid UTF-8 (lone surrogates) with a ValueError."""
    event = pending.event
    state = bytearray()
    v, at, tp = schema.SCHEMA_VERSION, pending.at, pending.traceparent
    envelope = _Stamped(v, at, tp, event, origin) if origin else _Envelope(v, at, tp, event)
    _encode_into(envelope, state)
    return Prepared(stream_of(event), schema.type_name(event), state, pending)


def recorded(row: StoredRow, where: str) -> Recorded:
    """Decodes a stored row, upcasting old schema versions; raises `LogCorrupted` if it cannot.

    A row of the current schema is decoded by msgspec straight into the event's
    dataclasses, typed by its topic (docs/adr/0010-fold-decoding.md). Anything that does
    not fit those types exactly (an older version, a value of another type) takes the
    generic path: orjson, upcasters, `schema.decode`, which reads what older builds wrote.
    """
    position, stream, version, topic, state = row
    typed = _TYPED.get(topic)
    if typed is not None:
        try:
            stored = typed.decode(state)
        except msgspec.MsgspecError:
            pass  # not the current schema's shape: the generic path says why, or reads it
        else:
            if stored.v == schema.SCHEMA_VERSION:
                return _recorded(
                    position, stream, version, stored.at, stored.d, stored.tp, stored.n
                )
    return recorded_generic(row, where)


def recorded_generic(row: StoredRow, where: str) -> Recorded:
    """`recorded` through orjson and `schema.decode`: any schema version, lenient types."""
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
        node = envelope.get("n", "")
        if type(node) is not str:
            node = str(node)
    except Exception as e:  # any failure to decode is the same fact: a bad payload
        reason = f"the payload of {topic!r} v{version} does not decode: {e!r}"
        raise LogCorrupted(where, reason, position=position, stream=stream) from e
    return _recorded(position, stream, version, at, event, traceparent, node)


def _typed_decoder(cls: type[Event]) -> msgspec.json.Decoder[Any]:
    """The envelope {"v", "at", "tp", "d", "n"} with `d` typed as `cls`."""
    stored = msgspec.defstruct(
        f"Stored{cls.__name__}",
        [("v", int), ("at", int), ("d", cls), ("tp", str, ""), ("n", str, "")],
    )
    return msgspec.json.Decoder(stored)


_TYPED: dict[str, msgspec.json.Decoder[Any]] = {t.__name__: _typed_decoder(t) for t in EVENT_TYPES}
# Recorded(...) without its frozen __init__: the read path makes one per event.
_recorded = positional(Recorded)
