"""The gRPC server's codec: a request payload that does not decode is the caller's error.

grpclib answers a decoding failure as any unhandled exception, `UNKNOWN: Internal Server
Error`; this says INVALID_ARGUMENT and what the payload failed to be, in a bounded excerpt.
betterproto2 also decodes a field sent with the wrong wire type (a group, a varint for a
string) into a value of the wrong Python type, or None, which the services would trip
over: such a message is refused here too, by checking each field against its declared
type. The health and reflection services' messages are google.protobuf ones, whose parser
keeps a field of the wrong wire type as an unknown field: they are only decoded.
"""

from __future__ import annotations

from typing import Any

import betterproto2
from grpclib import GRPCError
from grpclib.const import Status
from grpclib.encoding.proto import ProtoCodec

from caxton.shell.api.limits import RequestLimits

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


class RequestCodec(ProtoCodec):
    def __init__(self, limits: RequestLimits | None = None) -> None:
        self.limits = limits or RequestLimits()

    def decode(self, data: bytes, message_type: Any) -> Any:
        self.limits.check(data, message_type)  # before any decoding
        try:
            message = super().decode(data, message_type)
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
