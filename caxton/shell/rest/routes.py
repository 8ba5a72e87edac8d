"""The REST gateway's operations under /api/v1: each a short adapter from HTTP to one call
of the gRPC services (the same objects the gRPC server serves), described once for both
Starlette's routing and the OpenAPI document."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import betterproto2
import orjson
from grpclib import GRPCError
from grpclib.const import Status
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from caxton.domain.errors import quoted
from caxton.replay.trace import claim_streams, trace_lines
from caxton.shell.api.cluster import ClusterService
from caxton.shell.api.generated.caxton import v1
from caxton.shell.api.limits import MAX_COMPONENT_BYTES, MAX_REQUEST_BYTES
from caxton.shell.api.ops import OpsService
from caxton.shell.api.service import (
    MAX_WAIT_MS,
    AgentService,
    ConversationService,
    EventService,
    MessageService,
)
from caxton.shell.api.tools import ToolService
from caxton.shell.rest import reading
from caxton.shell.rest.problems import Problem
from caxton.shell.rest.reading import QueryParam, Reader, message_params
from caxton.shell.rest.schemas import MessageType, Schema, answer, ref

API = "/api/v1"
JSON = "application/json"
NDJSON = "application/x-ndjson"
WASM = "application/wasm"
DEFAULT_INVOKE_WAIT_MS = 5_000


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

    async def body_message(self, kind: type[reading.M], limit: int, **given: Any) -> reading.M:
        data = await self.json(limit)
        if not isinstance(data, dict):
            raise Problem.invalid("body", f"must be a JSON object (a {kind.__name__})")
        _from_path(data, **given)
        return self.reader.message(kind, data)


def _from_path(data: dict[str, Any], **given: str) -> None:
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


def _json(message: MessageType, status: int = 200, description: str = "") -> Answer:
    return Answer(status, description or message.__name__, {JSON: ref(message)})


# --- agents ----------------------------------------------------------------


async def _deploy(call: Call) -> Response:
    request = await _deploy_request(call)
    info = await call.services.agents.deploy(request)
    return json_answer(info, 201, {"Location": f"{API}/agents/{info.name}"})


async def _deploy_request(call: Call) -> v1.DeployRequest:
    """From a DeployRequest in JSON (the component in base64); a multipart form with a
    `component` file and a `metadata` part (the DeployRequest's other fields, JSON); or
    the component as the body and the other fields as query parameters."""
    limit = MAX_COMPONENT_BYTES + MAX_REQUEST_BYTES
    kind = reading.media_type(call.request.headers)
    if kind == JSON:
        call.query()  # none are taken: refuses any given
        return await call.body_message(v1.DeployRequest, limit)
    data = await reading.body(call.request, limit)
    if kind != "multipart/form-data":
        return _with_component(call.query_message(v1.DeployRequest), data)
    call.query()
    try:
        form = await MultiPartParser(
            call.request.headers, reading.once(data), max_files=1, max_fields=1
        ).parse()
    except MultiPartException as exc:
        raise Problem.invalid("body", exc.message) from None
    component = form.get("component")
    if not isinstance(component, UploadFile):
        raise Problem.invalid("component", "a multipart deploy needs a 'component' file part")
    text = form.get("metadata", "{}")
    if not isinstance(text, str):
        raise Problem.invalid("metadata", "must be a JSON object, not a file")
    metadata = reading.json_of(text.encode(), "metadata")
    if not isinstance(metadata, dict) or "component" in metadata:
        raise Problem.invalid(
            "metadata", "must be a JSON object of DeployRequest's fields other than component"
        )
    request = call.reader.message(v1.DeployRequest, metadata, "metadata")
    return _with_component(request, await component.read())


def _with_component(request: v1.DeployRequest, component: bytes) -> v1.DeployRequest:
    request.component = component
    return request


async def _list_agents(call: Call) -> Response:
    return json_answer(await call.services.agents.list_agents(v1.ListAgentsRequest()))


async def _get_agent(call: Call) -> Response:
    request = v1.GetAgentRequest(name=call.path("name"))
    return json_answer(await call.services.agents.get_agent(request))


async def _stop_agent(call: Call) -> Response:
    request = v1.StopAgentRequest(name=call.path("name"))
    return json_answer(await call.services.agents.stop_agent(request))


async def _remove_agent(call: Call) -> Response:
    await call.services.agents.remove_agent(v1.RemoveAgentRequest(name=call.path("name")))
    return Response(status_code=204)


async def _component(call: Call) -> Response:
    request = v1.GetComponentRequest(digest=call.path("digest"))
    found = await call.services.agents.get_component(request)
    return Response(found.component, media_type=WASM, headers={"Digest": found.digest})


async def _get_config(call: Call) -> Response:
    request = v1.GetConfigRequest(agent=call.path("name"))
    return json_answer(await call.services.ops.get_config(request))


async def _set_config(call: Call) -> Response:
    data = await call.json()
    if isinstance(data, dict) and "tools" in data and "setTools" not in data:
        data["setTools"] = True  # tools given are the new grant, as `config set --tools`
    if isinstance(data, dict):
        _from_path(data, agent=call.path("name"))
    request = call.reader.message(v1.SetConfigRequest, data)
    return json_answer(await call.services.ops.set_config(request))


async def _debug_agent(call: Call) -> Response:
    request = call.query_message(v1.DebugAgentRequest, agent=call.path("name"))
    return json_answer(await call.services.ops.debug_agent(request))


async def _top(call: Call) -> Response:
    return json_answer(await call.services.ops.top(v1.TopRequest()))


# --- messages --------------------------------------------------------------

IDEMPOTENCY_KEY = (
    "Idempotency-Key",
    "Becomes the message's id: a retry with the same key within two minutes is answered "
    "with the first one's result and not accepted twice.",
)


async def _send(call: Call) -> Response:
    request = await call.body_message(
        v1.SendRequest, call.services.messages.node.max_content_bytes + MAX_REQUEST_BYTES * 2
    )
    request.message = _keyed(call, request.message)
    return json_answer(await call.services.messages.send(request))


def _keyed(call: Call, envelope: v1.AclEnvelope | None) -> v1.AclEnvelope | None:
    """The envelope with the Idempotency-Key as its id (which it may also give, the same)."""
    key = call.request.headers.get("idempotency-key")
    if key is None or envelope is None:
        return envelope
    if envelope.id and envelope.id != key:
        raise Problem.invalid("message.id", "differs from the Idempotency-Key header")
    envelope.id = key
    return envelope


INVOKE_QUERY = (
    QueryParam(
        "waitMs",
        {"type": "integer", "minimum": 1, "maximum": MAX_WAIT_MS},
        description=f"How long to wait for the reply (default {DEFAULT_INVOKE_WAIT_MS}).",
    ),
    QueryParam("performative", {"type": "string"}, description="Default request."),
    QueryParam("protocol", {"type": "string"}, description="Default fipa-request."),
)


async def _invoke(call: Call) -> Response:
    """A request to an agent (the body is its content), answered with the agent's reply:
    `client.invoke` over HTTP."""
    query = call.query()
    content = await call.body_bytes(call.services.messages.node.max_content_bytes)
    reading.json_of(content)
    envelope = v1.AclEnvelope(
        performative=query.get("performative", "request"),
        receivers=[call.path("name")],
        content=content.decode(),
        language="json",
        protocol=query.get("protocol", "fipa-request"),
    )
    wait_ms = query.get("waitMs", DEFAULT_INVOKE_WAIT_MS)
    request = v1.SendRequest(message=_keyed(call, envelope), wait_ms=wait_ms)
    reply = await call.services.messages.send(request)
    if reply.reply is None:
        raise GRPCError(
            Status.DEADLINE_EXCEEDED,
            f"{call.path('name')} did not reply within {wait_ms} ms (conversation "
            f"{reply.conversation_id}; GET {API}/conversations/{reply.conversation_id}/trace)",
        )
    return json_answer(reply)


# --- conversations and events ------------------------------------------------


async def _list_conversations(call: Call) -> Response:
    request = call.query_message(v1.ListConversationsRequest)
    return json_answer(await call.services.conversations.list_conversations(request))


async def _get_conversation(call: Call) -> Response:
    request = v1.GetConversationRequest(id=call.path("id"))
    return json_answer(await call.services.conversations.get_conversation(request))


TRACE: Schema = {
    "type": "object",
    "properties": {
        "steps": {
            "type": "array",
            "items": {
                "type": "object",
                "description": "One step, as a line of `caxton trace --json`.",
                "properties": {
                    "position": {"type": "integer"},
                    "time": {"type": "string", "format": "date-time"},
                    "conversation_id": {"type": "string"},
                    "agent": {"type": "string"},
                    "message": {"type": "string"},
                    "status": {"type": "string"},
                    "message_id": {"type": "string"},
                    "to": {"type": "string"},
                    "error": {"type": "string"},
                    "tool": {"type": "string"},
                    "node": {"type": "string"},
                    "takeover": {"type": "object"},
                },
                "required": ["position", "time", "agent", "message", "status"],
            },
        }
    },
    "required": ["steps"],
}


async def _trace(call: Call) -> Response:
    """The steps of a conversation, as `caxton trace --json` prints them."""
    conversation = call.path("id")
    log = call.services.events.log
    try:
        own = await log.read(conversation_id=conversation)
        claims = await log.read_streams(claim_streams(own)) if own else []
    except Exception as exc:
        raise Problem.of(await _grpc_error(exc)) from None
    lines = trace_lines([*own, *claims])
    if not lines:
        raise GRPCError(Status.NOT_FOUND, f"no conversation {quoted(conversation)} in the log")
    body = {"steps": [line.to_json() for line in lines]}
    return Response(orjson.dumps(body), media_type=JSON)


async def _grpc_error(error: Exception) -> GRPCError:
    """`error` as the services would answer it (the one table, api/errors.py)."""
    from caxton.shell.api.errors import translated

    try:
        async with translated():
            raise error
    except GRPCError as said:
        return said
    raise AssertionError("translated() raises a GRPCError for every error")  # pragma: no cover


async def _events(call: Call) -> Response:
    """A range of the log as JSON lines, one EventRecord each."""
    request = call.query_message(v1.StreamEventsRequest)
    records = call.services.events.stream_events(request)
    first = await anext(records, None)  # a refusal comes before the answer starts

    async def lines() -> AsyncIterator[bytes]:
        if first is None:
            return
        yield orjson.dumps(answer(first)) + b"\n"
        async for record in records:
            yield orjson.dumps(answer(record)) + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


async def _follow(call: Call) -> Response:
    """The log's events from a position on, then each as it commits, as Server-Sent Events
    (`id` the position: a client reconnecting with Last-Event-ID goes on after it)."""
    given: dict[str, Any] = {"follow": True}
    last = call.request.headers.get("last-event-id", "")
    if last.isdigit():
        given["fromPosition"] = int(last) + 1
    request = call.query_message(v1.StreamEventsRequest, **given)
    records = call.services.events.stream_events(request)
    assert isinstance(records, AsyncGenerator)  # closed below, whichever way it ends
    stopping = call.services.stopping

    async def events() -> AsyncIterator[ServerSentEvent]:
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            while True:
                following = asyncio.ensure_future(anext(records))
                await asyncio.wait([following, stopped], return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    following.cancel()
                    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                        await following
                    return
                record = following.result()
                yield ServerSentEvent(
                    data=orjson.dumps(answer(record)).decode(),
                    id=str(record.position),
                    event="event",
                )
        except StopAsyncIteration:
            return
        finally:
            stopped.cancel()
            await records.aclose()

    return EventSourceResponse(events(), ping=15)


FOLLOWED: Schema = {
    "type": "object",
    "description": "Each event of the stream (as OpenAPI 3.2 describes event streams).",
    "properties": {
        "event": {"const": "event"},
        "id": {"type": "string", "description": "The event's position in the log."},
        "data": {
            "type": "string",
            "contentMediaType": JSON,
            "contentSchema": ref(v1.EventRecord),
        },
    },
    "required": ["event", "id", "data"],
}

FOLLOW_QUERY = tuple(
    message_params(v1.StreamEventsRequest, omit=("follow", "streams", "to_position"))
)


async def _log_info(call: Call) -> Response:
    return json_answer(await call.services.events.get_log_info(v1.GetLogInfoRequest()))


# --- tools, cluster, health --------------------------------------------------


async def _list_tools(call: Call) -> Response:
    request = call.query_message(v1.ListToolsRequest)
    return json_answer(await call.services.tools.list_tools(request))


async def _call_tool(call: Call) -> Response:
    """One tool call; the body is the tool's arguments (a JSON object)."""
    arguments = await call.json(call.services.messages.node.max_content_bytes)
    if not isinstance(arguments, dict):
        raise Problem.invalid("body", "the tool's arguments must be a JSON object")
    request = v1.CallToolRequest(
        server=call.path("server"),
        tool=call.path("tool"),
        arguments_json=orjson.dumps(arguments).decode(),
    )
    return json_answer(await call.services.tools.call_tool(request))


async def _members(call: Call) -> Response:
    return json_answer(await call.services.cluster.list_members(v1.ListMembersRequest()))


HEALTH: Schema = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["SERVING", "NOT_SERVING"]},
        "reason": {"type": "string"},
    },
    "required": ["status"],
    "additionalProperties": False,
}


async def _health(call: Call) -> Response:
    """SERVING while the server serves and its log takes appends, as the gRPC health
    check answers; 503 and why not otherwise."""
    refusal = call.services.refusal()
    body: dict[str, str] = {"status": "NOT_SERVING" if refusal else "SERVING"}
    if refusal:
        body["reason"] = refusal
    return Response(orjson.dumps(body), 503 if refusal else 200, media_type=JSON)


ANY_JSON: Schema = {"description": "Any JSON value."}
NAME = "{name}"

OPERATIONS: tuple[Operation, ...] = (
    Operation(
        method="POST",
        path=f"{API}/agents",
        handler=_deploy,
        rpc="AgentService.Deploy",
        summary="Deploy an agent: upload its component and start its instances",
        query=tuple(message_params(v1.DeployRequest, omit=("component",))),
        body=Body(
            {
                WASM: {"type": "string", "contentMediaType": WASM},
                "application/octet-stream": {"type": "string", "contentMediaType": WASM},
                "multipart/form-data": {
                    "type": "object",
                    "properties": {
                        "component": {"type": "string", "contentMediaType": WASM},
                        "metadata": ref(v1.DeployRequest),
                    },
                    "required": ["component"],
                },
                JSON: ref(v1.DeployRequest),
            },
            "The component as the body (its settings as query parameters), or a form with a "
            "`component` file and a `metadata` part, or a DeployRequest in JSON.",
        ),
        answers=(_json(v1.AgentInfo, 201, "The agent, its instances started"),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents",
        handler=_list_agents,
        rpc="AgentService.ListAgents",
        summary="List the agents",
        answers=(_json(v1.ListAgentsReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}",
        handler=_get_agent,
        rpc="AgentService.GetAgent",
        summary="An agent's status and instances",
        answers=(_json(v1.AgentInfo),),
    ),
    Operation(
        method="DELETE",
        path=f"{API}/agents/{NAME}",
        handler=_remove_agent,
        rpc="AgentService.RemoveAgent",
        summary="Stop an agent and forget it (its history stays in the log)",
        answers=(Answer(204, "Removed"),),
    ),
    Operation(
        method="POST",
        path=f"{API}/agents/{NAME}/stop",
        handler=_stop_agent,
        rpc="AgentService.StopAgent",
        summary="Stop an agent's instances",
        answers=(_json(v1.AgentInfo),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}/config",
        handler=_get_config,
        rpc="OpsService.GetConfig",
        summary="An agent's settings and where each came from",
        answers=(_json(v1.AgentConfig),),
    ),
    Operation(
        method="PATCH",
        path=f"{API}/agents/{NAME}/config",
        handler=_set_config,
        rpc="OpsService.SetConfig",
        summary="Change a running agent's settings (`tools` given: the new grant)",
        body=Body({JSON: ref(v1.SetConfigRequest)}),
        answers=(_json(v1.AgentConfig),),
    ),
    Operation(
        method="GET",
        path=f"{API}/agents/{NAME}/debug",
        handler=_debug_agent,
        rpc="OpsService.DebugAgent",
        summary="An agent's live figures, recent traps, restarts and conversations",
        query=tuple(message_params(v1.DebugAgentRequest, omit=("agent",))),
        answers=(_json(v1.AgentDebug),),
    ),
    Operation(
        method="POST",
        path=f"{API}/agents/{NAME}/invoke",
        handler=_invoke,
        summary="Send a request to an agent and wait for its reply (the body is the content)",
        query=INVOKE_QUERY,
        body=Body({JSON: ANY_JSON}, "The request's content."),
        answers=(_json(v1.SendReply, 200, "Accepted, and the agent's reply"),),
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        method="GET",
        path=f"{API}/components/{{digest}}",
        handler=_component,
        rpc="AgentService.GetComponent",
        summary="A component the server holds, by digest (sha256:HEX or HEX)",
        answers=(Answer(200, "The component", {WASM: {"type": "string"}}),),
    ),
    Operation(
        method="GET",
        path=f"{API}/top",
        handler=_top,
        rpc="OpsService.Top",
        summary="Live figures of every agent, and the open, stalled and violated conversations",
        answers=(_json(v1.TopReply),),
    ),
    Operation(
        method="POST",
        path=f"{API}/messages",
        handler=_send,
        rpc="MessageService.Send",
        summary="Send one ACL message (with waitMs, also wait for the reply)",
        body=Body({JSON: ref(v1.SendRequest)}),
        answers=(_json(v1.SendReply),),
        headers=(IDEMPOTENCY_KEY,),
    ),
    Operation(
        method="GET",
        path=f"{API}/conversations",
        handler=_list_conversations,
        rpc="ConversationService.ListConversations",
        summary="Conversations active since a time",
        query=tuple(message_params(v1.ListConversationsRequest)),
        answers=(_json(v1.ListConversationsReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/conversations/{{id}}",
        handler=_get_conversation,
        rpc="ConversationService.GetConversation",
        summary="One conversation, folded from the log",
        answers=(_json(v1.ConversationInfo),),
    ),
    Operation(
        method="GET",
        path=f"{API}/conversations/{{id}}/trace",
        handler=_trace,
        summary="A conversation's steps, as `caxton trace --json`",
        answers=(Answer(200, "The steps in log order", {JSON: TRACE}),),
    ),
    Operation(
        method="GET",
        path=f"{API}/events",
        handler=_events,
        rpc="EventService.StreamEvents",
        summary="Recorded events, one EventRecord per line (JSON lines)",
        query=tuple(message_params(v1.StreamEventsRequest, omit=("follow",))),
        answers=(Answer(200, "One EventRecord per line", {NDJSON: ref(v1.EventRecord)}),),
    ),
    Operation(
        method="GET",
        path=f"{API}/events/follow",
        handler=_follow,
        rpc="EventService.StreamEvents",
        summary="Recorded events, then each new one as it commits (Server-Sent Events)",
        query=FOLLOW_QUERY,
        answers=(
            Answer(
                200,
                "`event: event`, `id:` its position, `data:` an EventRecord",
                {"text/event-stream": FOLLOWED},
            ),
        ),
        headers=(("Last-Event-ID", "Go on after this position (fromPosition ignored)."),),
    ),
    Operation(
        method="GET",
        path=f"{API}/log",
        handler=_log_info,
        rpc="EventService.GetLogInfo",
        summary="The log's last position, where it is kept, and the node that answers",
        answers=(_json(v1.LogInfo),),
    ),
    Operation(
        method="GET",
        path=f"{API}/tools",
        handler=_list_tools,
        rpc="ToolService.ListTools",
        summary="The MCP tool servers, their state, bounds and tools",
        query=tuple(message_params(v1.ListToolsRequest)),
        answers=(_json(v1.ListToolsReply),),
    ),
    Operation(
        method="POST",
        path=f"{API}/tools/{{server}}/{{tool}}",
        handler=_call_tool,
        rpc="ToolService.CallTool",
        summary="Call one tool (the body is its arguments), as `caxton tools call`",
        body=Body({JSON: {"type": "object"}}, "The tool's arguments."),
        answers=(_json(v1.CallToolReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/cluster/members",
        handler=_members,
        rpc="ClusterService.ListMembers",
        summary="The cluster's nodes as the log says",
        answers=(_json(v1.ListMembersReply),),
    ),
    Operation(
        method="GET",
        path=f"{API}/health",
        handler=_health,
        summary="Whether the server serves (no token needed)",
        answers=(
            Answer(200, "Serving", {JSON: HEALTH}),
            Answer(503, "Not serving, and why", {JSON: HEALTH}),
        ),
        open=True,
    ),
)

NOT_EXPOSED = {
    "MessageService.SendStream": "a client stream of batches; over HTTP, POST each message "
    "(with keep-alive, as fast), or use gRPC",
}
"""RPCs the gateway deliberately leaves to gRPC, and why."""
