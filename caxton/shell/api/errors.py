"""The one table from domain, runtime, store and sandbox errors to gRPC status codes, and
from those to the HTTP statuses the REST gateway answers with."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from grpclib import GRPCError
from grpclib.const import Status
from grpclib.events import RecvRequest, listen
from grpclib.server import Server

from caxton.domain.errors import DomainError, InvalidAgentSpec, InvalidMessage, bounded
from caxton.shell.runtime.errors import (
    AgentExists,
    AgentNotFound,
    LogFailed,
    LogUnreachable,
    MailboxFull,
    NodeError,
    NodeStopping,
)
from caxton.shell.store.errors import AppendRejected, LogCorrupted, StoreError
from caxton.shell.wasm.errors import InvalidComponent, StorageFull, UnknownComponent, WasmError

STATUS_OF: tuple[tuple[type[Exception], Status], ...] = (
    (AgentNotFound, Status.NOT_FOUND),
    (AgentExists, Status.ALREADY_EXISTS),
    (InvalidMessage, Status.INVALID_ARGUMENT),
    (InvalidAgentSpec, Status.INVALID_ARGUMENT),
    (InvalidComponent, Status.INVALID_ARGUMENT),
    (UnknownComponent, Status.NOT_FOUND),
    (StorageFull, Status.RESOURCE_EXHAUSTED),
    (WasmError, Status.INTERNAL),
    (MailboxFull, Status.RESOURCE_EXHAUSTED),
    (NodeStopping, Status.UNAVAILABLE),
    (LogCorrupted, Status.DATA_LOSS),
    (AppendRejected, Status.ABORTED),
    (LogFailed, Status.UNAVAILABLE),
    (LogUnreachable, Status.UNAVAILABLE),
    (StoreError, Status.UNAVAILABLE),
    (NodeError, Status.FAILED_PRECONDITION),
    (DomainError, Status.INVALID_ARGUMENT),
)


HTTP_STATUS_OF: dict[Status, int] = {
    Status.OK: 200,
    Status.CANCELLED: 499,
    Status.UNKNOWN: 500,
    Status.INVALID_ARGUMENT: 400,
    Status.DEADLINE_EXCEEDED: 504,
    Status.NOT_FOUND: 404,
    Status.ALREADY_EXISTS: 409,
    Status.PERMISSION_DENIED: 403,
    Status.RESOURCE_EXHAUSTED: 429,
    Status.FAILED_PRECONDITION: 400,
    Status.ABORTED: 409,
    Status.OUT_OF_RANGE: 400,
    Status.UNIMPLEMENTED: 501,
    Status.INTERNAL: 500,
    Status.UNAVAILABLE: 503,
    Status.DATA_LOSS: 500,
    Status.UNAUTHENTICATED: 401,
}
"""Each gRPC status as HTTP, as google.rpc.Code (googleapis, google/rpc/code.proto) maps
them: the REST gateway's problem responses come from this table and STATUS_OF."""


def status_of(error: Exception) -> Status:
    for kind, status in STATUS_OF:
        if isinstance(error, kind):
            return status
    return Status.INTERNAL


MAX_STATUS_MESSAGE = 1024
"""The longest status message sent: grpclib percent- and Huffman-encodes it on the event
loop (ADR 0015)."""


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Raises a GRPCError with the mapped status and the error's own words."""
    try:
        yield
    except GRPCError as exc:
        raise _bounded(exc) from None
    except Exception as exc:
        status = status_of(exc)
        if status is Status.INTERNAL:
            raise _bounded(
                GRPCError(Status.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
            ) from exc
        raise _bounded(GRPCError(status, str(exc))) from None


def install_bounded_errors(server: Server) -> None:
    """Cuts the status message of every call's error, whatever raised it, to
    MAX_STATUS_MESSAGE characters: no request can make the server encode its own input."""

    async def on_request(event: RecvRequest) -> None:
        handle = event.method_func

        async def bounded_handle(stream: Any) -> None:
            try:
                await handle(stream)
            except GRPCError as exc:
                raise _bounded(exc) from None

        event.method_func = bounded_handle

    listen(server, RecvRequest, on_request)


def _bounded(error: GRPCError) -> GRPCError:
    message = error.message
    if message is None or len(message) <= MAX_STATUS_MESSAGE:
        return error
    return GRPCError(error.status, bounded(message, MAX_STATUS_MESSAGE), error.details)
