"""What the REST gateway's operations are made of: the services they call, one call's
request, and the description of each operation that both Starlette's routing and the
OpenAPI document are made from."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import betterproto2
import orjson
from starlette.requests import Request
from starlette.responses import Response

from caxton.shell.api.cluster import ClusterService
from caxton.shell.api.limits import MAX_REQUEST_BYTES
from caxton.shell.api.ops import OpsService
from caxton.shell.api.service import (
    AgentService,
    ConversationService,
    EventService,
    MessageService,
)
from caxton.shell.api.tools import ToolService
from caxton.shell.rest import reading
from caxton.shell.rest.problems import Problem
from caxton.shell.rest.reading import QueryParam, Reader
from caxton.shell.rest.schemas import MessageType, Schema, answer, ref

API = "/api/v1"
JSON = "application/json"
NDJSON = "application/x-ndjson"
WASM = "application/wasm"
JSON_INFLATION = 6
"""The most bytes of JSON per byte of the message it holds (a string of control
characters, each written `\\u0001`); the message itself is held to its gRPC limit."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    """What the gateway calls: the gRPC server's own service objects, and how the server is."""

    agents: AgentService
    messages: MessageService
    conversations: ConversationService
    events: EventService
    ops: OpsService
    tools: ToolService
    cluster: ClusterService
    refusal: Callable[[], str]
    """Why the server does not serve ("" while it does): the gRPC health check's answer."""
    stopping: asyncio.Event
    """Set as the server stops: event streams end."""


@dataclass(frozen=True, slots=True)
class Call:
    """One request to an operation."""

    operation: Operation
    request: Request
    services: Services
    reader: Reader

    def path(self, name: str) -> str:
        value: str = self.request.path_params[name]
        return value

    def query(self, **given: Any) -> dict[str, Any]:
        return self.reader.query(self.request.query_params, self.operation.query, **given)

    def query_message(self, kind: type[reading.M], **given: Any) -> reading.M:
        return self.reader.message(kind, self.query(**given))

    async def body_bytes(self, limit: int = MAX_REQUEST_BYTES) -> bytes:
        return await reading.body(self.request, limit)

    async def json(self, limit: int = MAX_REQUEST_BYTES) -> Any:
        data = await reading.body(self.request, limit)
        return reading.json_of(data) if data else {}

    async def body_message(self, kind: type[reading.M], limit: int = 0) -> reading.M:
        """The body, a `kind` in JSON, read no further than `limit` bytes (by default as
        far as the gRPC API's limit for a `kind` allows its JSON to be)."""
        data = await self.json(limit or JSON_INFLATION * self.reader.limits.max_bytes(kind))
        if not isinstance(data, dict):
            raise Problem.invalid("body", f"must be a JSON object (a {kind.__name__})")
        return self.reader.message(kind, data)


def from_path(data: dict[str, Any], **given: str) -> None:
    """Puts the values the path gives into a body, which may leave them out (or empty)."""
    for key, value in given.items():
        if data.get(key) not in (None, "", value):
            raise Problem.invalid(key, f"is {value!r} in the path; leave it out")
        data[key] = value


Handler = Callable[[Call], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Body:
    """What a request's body may be: schemas by media type."""

    content: dict[str, Schema]
    description: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    description: str
    content: dict[str, Schema] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    rpc: str = ""
    """The gRPC method it exposes (`AgentService.Deploy`), "" for the gateway's own."""
    query: tuple[QueryParam, ...] = ()
    body: Body | None = None
    answers: tuple[Answer, ...] = ()
    open: bool = False
    """Served without the token (as gRPC's health checks are)."""
    headers: tuple[tuple[str, str], ...] = ()
    """Request headers it reads: (name, description)."""


def json_answer(
    message: betterproto2.Message, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(answer(message)), status, headers, media_type=JSON)


def message_answer(message: MessageType, status: int = 200, description: str = "") -> Answer:
    return Answer(status, description or message.__name__, {JSON: ref(message)})
