"""The stored form of events: plain JSON-able dicts, a schema version, and upcasters.

`encode` and `decode` are inverses for every event type. When an event's shape
changes, bump `SCHEMA_VERSION` and add an upcaster from the old version's dict to
the new one; old logs then fold like new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from caxton.domain.acl import AclMessage, Performative
from caxton.domain.events import (
    EVENT_TYPES,
    AgentDeployed,
    AgentReconfigured,
    AgentStarted,
    Event,
    HostCall,
    Limits,
    MessageHandled,
    MessageSent,
    RestartPolicy,
)
from caxton.domain.frozen import builder

SCHEMA_VERSION = 1

_BY_NAME: dict[str, type[Event]] = {t.__name__: t for t in EVENT_TYPES}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# (type name, from version) -> function giving the dict of version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventType(ValueError):
    """A stored event whose type this build does not know (written by a newer Caxton?)."""


def type_name(event: Event) -> str:
    return type(event).__name__


def encode(event: Event) -> dict[str, Any]:
    """The event's payload as a JSON-able dict."""
    encoded: dict[str, Any] = _ENCODERS[type(event)](event)
    return encoded


def _plain(value: object) -> Any:
    if isinstance(value, AclMessage):
        return value.to_dict()
    if isinstance(value, Limits | RestartPolicy | HostCall):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


# Fields declared with these types hold JSON values as they are: no `_plain` walk.
_AS_IS = frozenset({"str", "int", "bool", "int | None", "str | None"})


def _encoder(cls: type[Event]) -> Callable[[Event], dict[str, Any]]:
    """`encode` for one type, generated once: `{"field": value, ...}` in field order."""
    items = ", ".join(
        f"{f.name!r}: event.{f.name}" if f.type in _AS_IS else f"{f.name!r}: _plain(event.{f.name})"
        for f in fields(cls)
    )
    namespace: dict[str, Any] = {"_plain": _plain}
    source = f"def encode(event):\n    return {{{items}}}\n"
    exec(compile(source, f"<caxton.domain.schema {cls.__name__}>", "exec"), namespace)
    encoder: Callable[[Event], dict[str, Any]] = namespace["encode"]
    return encoder


_ENCODERS: dict[type[Event], Callable[[Event], dict[str, Any]]] = {
    t: _encoder(t) for t in EVENT_TYPES
}


def decode(name: str, data: Mapping[str, Any], version: int = SCHEMA_VERSION) -> Event:
    """Rebuilds an event from its stored dict, upcasting older schema versions first."""
    build = _DECODERS.get(name)
    if build is None:
        raise UnknownEventType(f"unknown event type {name!r}")
    if version < SCHEMA_VERSION:
        payload = dict(data)
        while version < SCHEMA_VERSION:
            upcast = UPCASTERS.get((name, version))
            if upcast is not None:
                payload = upcast(payload)
            version += 1
        return build(payload)
    return build(data)


_PERFORMATIVES: dict[str, Performative] = {p.value: p for p in Performative}

# Decoders built once per type (caxton.domain.frozen.builder): the fields read
# straight from the stored dict, defaults for those missing, and these conversions.
message_from_stored: Callable[[Mapping[str, Any]], AclMessage] = builder(
    AclMessage, {"performative": _PERFORMATIVES.__getitem__, "receivers": tuple}
)
"""A message as stored: already validated when it was accepted, so no checks here."""

_host_call = builder(HostCall)


def _journal(entries: list[Mapping[str, Any]]) -> tuple[HostCall, ...]:
    return tuple([_host_call(j) for j in entries]) if entries else ()


def _tools(tools: list[str] | None) -> tuple[str, ...] | None:
    return None if tools is None else tuple(tools)


_CONVERSIONS: dict[type[Event], dict[str, Callable[[Any], Any]]] = {
    MessageSent: {"message": message_from_stored, "deliveries": tuple},
    MessageHandled: {"journal": _journal},
    AgentStarted: {"journal": _journal},
    AgentDeployed: {
        "capabilities": tuple,
        "tools": tuple,
        "limits": builder(Limits),
        "restart": builder(RestartPolicy),
    },
    AgentReconfigured: {"tools": _tools},
}

_DECODERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    t.__name__: builder(t, _CONVERSIONS.get(t)) for t in EVENT_TYPES
}
