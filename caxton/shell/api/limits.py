"""What a request may weigh before it is read and decoded: bytes per request, items per list
(per message, for the messages of a stream).

A request's declared length is checked before its body is read (grpclib would read up to
4 GiB into memory first), and its lists are counted before betterproto2 decodes them (it
is slow per item): a payload larger than `SCAN_FROM_BYTES` is first parsed by protobuf's
C parser to count them; smaller ones cannot hold enough items to matter (ADR 0015).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

from google.protobuf import message_factory
from google.protobuf.message import DecodeError, Message
from grpclib import GRPCError
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.server import Server

from caxton.domain.acl import DEFAULT_MAX_CONTENT_BYTES, max_envelope_bytes
from caxton.domain.units import format_size
from caxton.shell.api.reflection import descriptor_pool

MAX_REQUEST_BYTES = 64 << 10
"""Any request but those that carry a message, tool arguments or a component."""
MAX_COMPONENT_BYTES = 256 << 20
"""The largest component a deploy may upload."""
MAX_ITEMS = 4096
"""The most items any one list of a request may hold (receivers have a lower limit)."""
SCAN_FROM_BYTES = 4096
PACKAGE = "caxton.v1"


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The limits of one server; the envelope's depends on its content limit."""

    max_content_bytes: int = DEFAULT_MAX_CONTENT_BYTES
    _bytes: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        envelope = max_envelope_bytes(self.max_content_bytes) + MAX_REQUEST_BYTES
        self._bytes.update(
            SendRequest=envelope,
            StreamedSend=envelope,  # per message of a SendStream, checked as each is read
            CallToolRequest=envelope,
            DeployRequest=MAX_COMPONENT_BYTES + MAX_REQUEST_BYTES,
        )

    def max_bytes(self, message_type: type) -> int:
        return self._bytes.get(message_type.__name__, MAX_REQUEST_BYTES)

    def check_length(self, length: int, message_type: type) -> None:
        """Raises INVALID_ARGUMENT for a request of `length` bytes over its limit."""
        limit = self.max_bytes(message_type)
        if length > limit:
            raise GRPCError(
                Status.INVALID_ARGUMENT,
                f"a {message_type.__name__} of {format_size(length)} is over the limit of "
                f"{format_size(limit)} (the README lists every field's limit)",
            )

    def check(self, data: bytes, message_type: type) -> None:
        """Raises INVALID_ARGUMENT for a request over its size, or with a list too long."""
        self.check_length(len(data), message_type)
        if len(data) >= SCAN_FROM_BYTES and (parser := upb_class(message_type.__name__)):
            try:
                parsed = parser.FromString(data)
            except DecodeError:
                return  # the decoder proper says what is wrong with it
            self.check_lists(parsed, len(data))

    def check_lists(self, parsed: Message, length: int) -> None:
        """Raises INVALID_ARGUMENT for a request, parsed by upb from `length` bytes, with a
        list too long."""
        if length >= SCAN_FROM_BYTES and (path := _long_list(parsed)):
            raise GRPCError(
                Status.INVALID_ARGUMENT, f"{path}: more than {MAX_ITEMS} items in one list"
            )


def install_request_limits(server: Server, limits: RequestLimits) -> None:
    """Refuses a request whose declared length is over its limit before its body is read."""

    async def on_request(event: RecvRequest) -> None:
        handle = event.method_func

        async def bounded_handle(stream: Any) -> None:
            # grpclib 0.4's server Stream reads through `_stream`, for `_recv_type`
            stream._stream = _DeclaredLength(stream._stream, limits, stream._recv_type)
            await handle(stream)

        event.method_func = bounded_handle

    listen(server, RecvRequest, on_request)


class _DeclaredLength:
    """An HTTP/2 stream that will not read a message longer than its type's limit: the
    read fails at the 5-byte prefix, and flow control stops the sender."""

    def __init__(self, inner: Any, limits: RequestLimits, message_type: type) -> None:
        self._inner = inner
        self._limits = limits
        self._message_type = message_type

    async def recv_data(self, size: int) -> bytes:
        self._limits.check_length(size, self._message_type)
        data: bytes = await self._inner.recv_data(size)
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@cache
def upb_class(name: str) -> type[Message] | None:
    """The upb message class of a Caxton message type, None for another package's."""
    try:
        descriptor = descriptor_pool().FindMessageTypeByName(f"{PACKAGE}.{name}")
    except KeyError:
        return None
    parser: type[Message] = message_factory.GetMessageClass(descriptor)
    return parser


def _long_list(message: Any, prefix: str = "") -> str:
    """The path of the first list with more than MAX_ITEMS items, or ""."""
    for descriptor, value in message.ListFields():
        path = f"{prefix}{descriptor.name}"
        entry = descriptor.message_type
        if descriptor.is_repeated:
            if len(value) > MAX_ITEMS:
                return path
            if entry is not None and entry.GetOptions().map_entry:
                nested = value.values() if entry.fields_by_name["value"].message_type else ()
            else:
                nested = value if entry is not None else ()
        else:
            nested = (value,) if entry is not None else ()
        for item in nested:
            found = _long_list(item, f"{path}.")
            if found:
                return found
    return ""
