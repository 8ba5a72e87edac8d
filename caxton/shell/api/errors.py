"""The one table from domain, runtime, store and sandbox errors to gRPC status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from grpclib import GRPCError
from grpclib.const import Status

from caxton.domain.errors import DomainError, InvalidAgentSpec, InvalidMessage
from caxton.shell.runtime.errors import (
    AgentExists,
    AgentNotFound,
    LogFailed,
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
    (StoreError, Status.UNAVAILABLE),
    (NodeError, Status.FAILED_PRECONDITION),
    (DomainError, Status.INVALID_ARGUMENT),
)


def status_of(error: Exception) -> Status:
    for kind, status in STATUS_OF:
        if isinstance(error, kind):
            return status
    return Status.INTERNAL


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Raises a GRPCError with the mapped status and the error's own words."""
    try:
        yield
    except GRPCError:
        raise
    except Exception as exc:
        status = status_of(exc)
        if status is Status.INTERNAL:
            raise GRPCError(
                Status.INTERNAL, f"internal error: {type(exc).__name__}: {exc}"
            ) from exc
        raise GRPCError(status, str(exc)) from None
