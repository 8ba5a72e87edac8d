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

SCHEMA_VERSION = 1

_BY_NAME: dict[str, type[Event]] = {t.__name__: t for t in EVENT_TYPES}
_FIELD_NAMES: dict[type[Event], tuple[str, ...]] = {
    t: tuple(f.name for f in fields(t)) for t in EVENT_TYPES
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
# (type name, from version) -> function giving the dict of version + 1
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class UnknownEventType(ValueError):
    """A stored event whose type this build does not know (written by a newer Caxton?)."""


def type_name(event: Event) -> str:
    return type(event).__name__


def encode(event: Event) -> dict[str, Any]:
    """The event's payload as a JSON-able dict."""
    return {name: _plain(getattr(event, name)) for name in _FIELD_NAMES[type(event)]}


def _plain(value: object) -> Any:
    if isinstance(value, AclMessage):
        return value.to_dict()
    if isinstance(value, Limits | RestartPolicy | HostCall):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def decode(name: str, data: Mapping[str, Any], version: int = SCHEMA_VERSION) -> Event:
    """Rebuilds an event from its stored dict, upcasting older schema versions first."""
    cls = _BY_NAME.get(name)
    if cls is None:
        raise UnknownEventType(f"unknown event type {name!r}")
    payload = dict(data)
    while version < SCHEMA_VERSION:
        upcast = UPCASTERS.get((name, version))
        if upcast is not None:
            payload = upcast(payload)
        version += 1
    kwargs: dict[str, Any] = {name: payload[name] for name in _FIELD_NAMES[cls] if name in payload}
    if cls is MessageSent:
        kwargs["message"] = message_from_stored(kwargs["message"])
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


def message_from_stored(data: Mapping[str, Any]) -> AclMessage:
    """A message as stored: already validated when it was accepted, so no checks here."""
    return AclMessage(
        id=data["id"],
        performative=Performative(data["performative"]),
        sender=data["sender"],
        receivers=tuple(data["receivers"]),
        content=data.get("content", ""),
        language=data.get("language", "json"),
        ontology=data.get("ontology", ""),
        protocol=data.get("protocol", ""),
        conversation_id=data.get("conversation_id", ""),
        reply_with=data.get("reply_with", ""),
        in_reply_to=data.get("in_reply_to", ""),
        reply_by=data.get("reply_by"),
        traceparent=data.get("traceparent", ""),
    )
