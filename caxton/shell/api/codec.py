"""The API's codecs: protobuf's C parser (upb) under betterproto2's types, and the server's
refusal of a request payload that does not decode.

betterproto2 encodes and decodes in Python, at 70-170 µs for one envelope; `FastCodec`
parses and serializes with upb, which holds the same descriptors (`caxton.protoset`), and
moves the fields between the two kinds of message by tables made once per type. A
payload upb does not take as it is falls back to betterproto2, whose error says what is
wrong with it.

`RequestCodec` is the server's: grpclib answers a decoding failure as any unhandled
exception, `UNKNOWN: Internal Server Error`; this says INVALID_ARGUMENT and what the
payload failed to be, in a bounded excerpt. betterproto2 also decodes a field sent with
the wrong wire type (a group, a varint for a string) into a value of the wrong Python
type, or None, which the services would trip over: such a message is refused here too,
by checking each field against its declared type. upb keeps such a field as an unknown
field of a known number, which sends the payload down betterproto2's path. The health
and reflection services' messages are google.protobuf ones, whose parser keeps a field
of the wrong wire type as an unknown field: they are only decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import betterproto2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet
from grpclib import GRPCError
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec

from caxton.shell.api.generated.caxton import v1
from caxton.shell.api.limits import RequestLimits, upb_class

_PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "bytes": bytes,
    "bool": bool,
    "double": float,
    "float": float,
    "enum": int,
    **{
        t: int
        for t in (
            "int32",
            "int64",
            "uint32",
            "uint64",
            "sint32",
            "sint64",
            "fixed32",
            "fixed64",
            "sfixed32",
            "sfixed64",
        )
    },
}


REASON_CHARS = 200

# how a field moves between the two kinds of message
_SCALAR, _OPTIONAL, _MESSAGE, _REPEATED, _REPEATED_MESSAGES = range(5)


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    kind: int
    shape: _Shape | None  # of a message field's type


@dataclass(frozen=True, slots=True)
class _Shape:
    """One caxton.v1 message type in both forms, and how its fields map."""

    betterproto: type[betterproto2.Message]
    upb: Any
    fields: tuple[_Field, ...]
    numbers: frozenset[int]
    nested: tuple[str, ...]  # the singular message fields, for the unknown-field check

    def kwargs(self, message: Any) -> dict[str, Any]:
        """The betterproto2 message's fields as upb's constructor takes them."""
        out: dict[str, Any] = {}
        for field in self.fields:
            value = getattr(message, field.name)
            kind = field.kind
            if kind in (_SCALAR, _REPEATED):
                if value:
                    out[field.name] = value
            elif value is None:
                continue
            elif kind == _OPTIONAL:
                out[field.name] = value
            elif kind == _MESSAGE:
                assert field.shape is not None
                out[field.name] = field.shape.kwargs(value)
            elif value:
                assert field.shape is not None
                out[field.name] = [field.shape.kwargs(item) for item in value]
        return out

    def built(self, parsed: Any) -> Any:
        """The betterproto2 message of a upb one."""
        out: dict[str, Any] = {}
        for field in self.fields:
            name, kind = field.name, field.kind
            if kind == _SCALAR:
                out[name] = getattr(parsed, name)
            elif kind == _REPEATED:
                out[name] = list(getattr(parsed, name))
            elif kind == _REPEATED_MESSAGES:
                assert field.shape is not None
                out[name] = [field.shape.built(item) for item in getattr(parsed, name)]
            elif parsed.HasField(name):
                value = getattr(parsed, name)
                out[name] = field.shape.built(value) if field.shape is not None else value
            else:
                out[name] = None
        return self.betterproto(**out)

    def mistyped(self, parsed: Any) -> bool:
        """Whether upb kept a field of a known number as unknown: its wire type was wrong."""
        unknown = UnknownFieldSet(parsed)
        if any(unknown[i].field_number in self.numbers for i in range(len(unknown))):
            return True
        shapes = {f.name: f.shape for f in self.fields if f.shape is not None}
        for field in self.fields:
            if field.kind == _REPEATED_MESSAGES:
                shape = shapes[field.name]
                if any(shape.mistyped(item) for item in getattr(parsed, field.name)):
                    return True
        for name in self.nested:
            if parsed.HasField(name) and shapes[name].mistyped(getattr(parsed, name)):
                return True
        return False


@cache
def _shape(message_type: type) -> _Shape | None:
    """The shape of a caxton.v1 betterproto2 type; None for any other type."""
    if getattr(v1, message_type.__name__, None) is not message_type:
        return None
    upb = upb_class(message_type.__name__)
    if upb is None:
        return None
    descriptor: Any = upb.DESCRIPTOR
    known = message_type._betterproto.meta_by_field_name
    fields = []
    for fd in descriptor.fields:
        if fd.name not in known:
            return None
        shape = None
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            shape = _shape(getattr(v1, fd.message_type.name))
            if shape is None:
                return None
        if fd.is_repeated:
            kind = _REPEATED if shape is None else _REPEATED_MESSAGES
        elif shape is not None:
            kind = _MESSAGE
        else:
            kind = _OPTIONAL if fd.has_presence else _SCALAR
        fields.append(_Field(fd.name, kind, shape))
    return _Shape(
        betterproto=message_type,
        upb=upb,
        fields=tuple(fields),
        numbers=frozenset(fd.number for fd in descriptor.fields),
        nested=tuple(f.name for f in fields if f.kind == _MESSAGE),
    )


class FastCodec(ProtoCodec):
    """grpclib's protobuf codec, with upb doing the work for caxton.v1's messages."""

    def encode(self, message: Any, message_type: Any) -> bytes:
        shape = _shape(message_type)
        if shape is None or not isinstance(message, message_type):
            return bytes(super().encode(message, message_type))
        data: bytes = shape.upb(**shape.kwargs(message)).SerializeToString()
        return data

    def decode(self, data: bytes, message_type: Any) -> Any:
        shape = _shape(message_type)
        if shape is not None:
            parsed = _parsed(shape, data)
            if parsed is not None:
                return shape.built(parsed)
        return super().decode(data, message_type)


def _parsed(shape: _Shape, data: bytes) -> Any:
    """upb's parse of `data`, or None where betterproto2 should say what is wrong."""
    try:
        parsed = shape.upb.FromString(data)
    except DecodeError:
        return None
    return None if shape.mistyped(parsed) else parsed


class RequestCodec(FastCodec):
    def __init__(self, limits: RequestLimits | None = None) -> None:
        self.limits = limits or RequestLimits()

    def decode(self, data: bytes, message_type: Any) -> Any:
        self.limits.check_length(len(data), message_type)  # before any decoding
        shape = _shape(message_type)
        parsed = _parsed(shape, data) if shape is not None else None
        if parsed is not None:
            assert shape is not None
            self.limits.check_lists(parsed, len(data))
            return shape.built(parsed)
        self.limits.check(data, message_type)
        try:
            message = ProtoCodec.decode(self, data, message_type)
            if isinstance(message, betterproto2.Message):
                _check_types(message)
        except Exception as exc:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"the request is not a valid {message_type.__name__} message ({_excerpt(exc)})",
            ) from None
        return message


def _excerpt(exc: Exception) -> str:
    """The error on one line, cut before it is reformatted: it may quote the payload."""
    text = f"{type(exc).__name__}: {str(exc)[: REASON_CHARS * 2]}"
    return " ".join(text.split())[:REASON_CHARS]


def _check_types(message: Any) -> None:
    for name, meta in message._betterproto.meta_by_field_name.items():
        value = getattr(message, name)
        if meta.map_meta is not None:
            continue
        values = value if meta.repeated else [value]
        if not isinstance(values, list):
            raise TypeError(f"field {name!r} should be repeated")
        for item in values:
            if item is None:
                if meta.optional or meta.group is not None:
                    continue
                raise TypeError(f"field {name!r} has the wrong wire type")
            if meta.proto_type == "message":
                if not isinstance(item, betterproto2.Message):
                    raise TypeError(f"field {name!r} should be a message")
                _check_types(item)
                continue
            expected = _PYTHON_TYPES.get(meta.proto_type)
            if expected is not None and not isinstance(item, expected):
                raise TypeError(f"field {name!r} should be {meta.proto_type}")
