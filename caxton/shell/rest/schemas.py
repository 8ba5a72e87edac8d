"""JSON Schemas of the API's messages, derived from the betterproto2 classes, in protobuf's
JSON mapping (proto3 JSON: lowerCamelCase names, 64-bit integers as strings, bytes as
base64); and the JSON each message is answered as."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import betterproto2

from caxton.shell.api.generated.caxton import v1

Schema = dict[str, Any]
MessageType = type[betterproto2.Message]

INT64_TEXT = re.compile(r"^-?[0-9]+$")
_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
}
_NUMBER_WORDS = ["NaN", "Infinity", "-Infinity"]


def ref(message: MessageType) -> Schema:
    return {"$ref": f"#/components/schemas/{message.__name__}"}


@dataclass(frozen=True, slots=True)
class ProtoField:
    name: str
    """Its name in the .proto (snake_case)."""
    proto_type: str
    """`string`, `int64`, `message`, ... as betterproto2 names them."""
    repeated: bool
    cls: Any
    """The message class of a `message` field."""


def proto_fields(message: MessageType) -> list[ProtoField]:
    """A message's fields, in the order of the .proto, from betterproto2's metadata."""
    meta = message._betterproto  # type: ignore[arg-type]
    return [
        ProtoField(name, field.proto_type, bool(field.repeated), meta.cls_by_field[name])
        for name, field in meta.meta_by_field_name.items()
    ]


def message_schema(message: MessageType) -> Schema:
    """One message: an object of its fields under their JSON names, nothing else."""
    properties: dict[str, Schema] = {}
    for field in proto_fields(message):
        schema = _field_schema(field.proto_type, field.cls, message, field.name)
        properties[json_name(field.name)] = (
            {"type": "array", "items": schema} if field.repeated else schema
        )
    return {"type": "object", "properties": properties, "additionalProperties": False}


def _field_schema(proto_type: str, cls: Any, owner: MessageType, name: str) -> Schema:
    if proto_type == "message":
        return ref(cls)
    if proto_type == "string":
        return {"type": "string"}
    if proto_type == "bool":
        return {"type": "boolean"}
    if proto_type == "bytes":
        return {"type": "string", "contentEncoding": "base64"}
    if proto_type in ("double", "float"):
        return {"anyOf": [{"type": "number"}, {"type": "string", "enum": _NUMBER_WORDS}]}
    if proto_type in ("int32", "uint32"):
        low, high = _RANGES[proto_type]
        return {"type": "integer", "format": proto_type, "minimum": low, "maximum": high}
    if proto_type in ("int64", "uint64"):
        # the JSON mapping writes them as strings and reads strings or numbers
        low, high = _RANGES[proto_type]
        return {
            "anyOf": [
                {"type": "string", "pattern": INT64_TEXT.pattern, "format": proto_type},
                {"type": "integer", "minimum": low, "maximum": high},
            ]
        }
    raise TypeError(f"{owner.__name__}.{name}: no JSON Schema for protobuf type {proto_type}")


def json_name(field: str) -> str:
    """protobuf's JSON name of a field: `conversation_id` is `conversationId`."""
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def messages_of(roots: Iterable[MessageType]) -> dict[str, Schema]:
    """The schemas of `roots` and of every message they hold, by name."""
    found: dict[str, Schema] = {}
    pending = list(roots)
    while pending:
        message = pending.pop()
        if message.__name__ in found:
            continue
        found[message.__name__] = message_schema(message)
        pending += [f.cls for f in proto_fields(message) if f.proto_type == "message"]
    return dict(sorted(found.items()))


def in_range(text: str, kind: str) -> bool:
    """Whether an integer written as `text` fits the protobuf type `kind` (int64, ...)."""
    low, high = _RANGES[kind]
    return INT64_TEXT.match(text) is not None and low <= int(text) <= high


def answer(message: betterproto2.Message) -> dict[str, Any]:
    """A message as JSON: every field, its default when unset, except unset optional ones
    (a proto3 `optional` scalar, a message) which are left out as the mapping leaves them."""
    shown: dict[str, Any] = _without_unset(message.to_dict(include_default_values=True))
    return shown


def _without_unset(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_unset(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_unset(v) for v in value]
    return value


def all_messages() -> list[MessageType]:
    """Every message of the caxton.v1 package (for the test that checks them)."""
    return [
        cls
        for cls in vars(v1).values()
        if isinstance(cls, type)
        and issubclass(cls, betterproto2.Message)
        and cls.__module__ == v1.__name__
    ]
